"""The model registry: ``models/registry.json`` maps aliases to versions and keeps their history.

``{"aliases": {"production": "1.2.0", ...}, "history": [event, ...]}``. Every change is one
event appended to the history (``promote``, ``rollback``), with who made it, when, the version
it replaced, whether the gate passed or was forced, and on which data; the file is replaced
atomically, so a reader (the service polling for an alias change) sees the old or the new
registry, never half of one.

:func:`read_alias` and :func:`alias_stamp` are what a running service needs to notice a
promotion cheaply (they import nothing heavy).
"""

from __future__ import annotations

import getpass
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cds.errors import CdsError, UserError
from cds.model import MODEL_ID
from cds.registry import REGISTRY_FILE as REGISTRY_FILE
from cds.registry import alias_stamp as alias_stamp
from cds.registry import check_name
from cds.registry import read_alias as read_alias
from cds.registry import read_registry as read_registry


class RegistryError(UserError):
    """An alias change that cannot be made (unknown version, nothing to roll back to, no data)."""

    status = 409
    code = "registry"


class GateFailed(CdsError):
    """The promotion gate refused a candidate: a decision, not a mistake (the CLI exits 1)."""

    status = 409
    code = "gate-failed"


def _write(root: Path, registry: dict[str, Any]) -> None:
    path = root / REGISTRY_FILE
    tmp = path.with_name(f".{REGISTRY_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(registry, indent=2) + "\n")
    os.replace(tmp, path)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def set_alias(root: Path, alias: str, version: str, *, action: str = "promote",
              **details: Any) -> dict[str, Any]:
    """Point ``alias`` at ``version``, appending one history event (with ``details``).

    Both names are checked (:data:`cds.registry.NAME`) before anything is read or written.
    """
    check_name(alias, "alias")
    check_name(version, "version")
    if not (root / MODEL_ID / version).is_dir():
        raise RegistryError(f"no version {version} under {root / MODEL_ID}")
    registry = read_registry(root)
    previous = registry["aliases"].get(alias)
    registry["aliases"][alias] = version
    registry["history"].append({"action": action, "alias": alias, "version": version,
                                "previous": previous, "by": _user(),
                                "at": datetime.now(UTC).isoformat(timespec="seconds"),
                                **details})
    _write(root, registry)
    return registry


def unset_alias(root: Path, alias: str, *, reason: str | None = None) -> dict[str, Any]:
    """Remove ``alias`` (e.g. ``shadow``: ends shadow mode), appending an ``unset`` event."""
    check_name(alias, "alias")
    registry = read_registry(root)
    previous = registry["aliases"].pop(alias, None)
    if previous is None:
        raise RegistryError(f"alias '{alias}' is not set (cds models list)")
    registry["history"].append({"action": "unset", "alias": alias, "version": None,
                                "previous": previous, "by": _user(),
                                "at": datetime.now(UTC).isoformat(timespec="seconds"),
                                "reason": reason})
    _write(root, registry)
    return registry


def lineage(history: list[dict[str, Any]], alias: str) -> list[str]:
    """The versions ``alias`` has stood on, oldest first, after replaying its history: a
    promotion pushes a version, a rollback pops the current one. Rolling back walks down this
    stack, so two rollbacks after two promotions return to the first version, never toggle."""
    stack: list[str] = []
    for event in history:
        if event.get("alias") != alias:
            continue
        if event.get("action") == "unset":
            stack.clear()  # the alias was removed: nothing earlier to roll back to
        elif event.get("action") == "rollback":
            if stack:
                stack.pop()
            if not stack or stack[-1] != event.get("version"):
                stack.append(str(event.get("version")))  # a history written by older code
        else:
            stack.append(str(event.get("version")))
    return stack


def rollback_target(root: Path, alias: str) -> str:
    """The version ``alias`` stood on before its current one, walking back along the history
    (:func:`lineage`); earlier rollbacks are not undone."""
    registry = read_registry(root)
    current = registry["aliases"].get(check_name(alias, "alias"))
    stack = lineage(registry["history"], alias)
    if stack and stack[-1] == current and len(stack) > 1:
        return stack[-2]
    raise RegistryError(f"alias '{alias}' has no earlier version to roll back to "
                        f"(its history: {' -> '.join(stack) or 'empty'})")


def rollback(root: Path, alias: str, *, reason: str | None = None) -> dict[str, Any]:
    """Point ``alias`` back at its previous version (not gated: a rollback is the way out)."""
    return set_alias(root, alias, rollback_target(root, alias), action="rollback", reason=reason)


def history_lines(root: Path, alias: str | None = None) -> list[str]:
    """The registry's history in words, oldest first (``cds models history``)."""
    lines = []
    for e in read_registry(root)["history"]:
        if alias and e.get("alias") != alias:
            continue
        gate = e.get("gate")
        verdict = ("gate passed" if gate and gate.get("passed") else
                   "gate FAILED, forced" if gate else
                   "forced, no gate" if e.get("forced") else
                   "rollback, not gated" if e.get("action") == "rollback" else
                   "alias removed" if e.get("action") == "unset" else "not gated")
        line = (f"{e.get('at', '?')}  {e.get('action', 'set')}  {e.get('alias')}: "
                f"{e.get('previous') or '(none)'} -> {e.get('version') or '(none)'}  by {e.get('by', '?')}  "
                f"[{verdict}]")
        if e.get("gate_data"):
            line += f"  data: {e['gate_data']}"
        if e.get("report"):
            line += f"  report: {e['report']}"
        if e.get("reason"):
            line += f"  reason: {e['reason']}"
        lines.append(line)
        lines += [f"    - {f}" for f in (gate or {}).get("failures", [])]
    return lines


def versions(root: Path) -> list[dict[str, Any]]:
    """Every version on disk with its aliases and headline facts (oldest first by creation)."""
    aliases = read_registry(root)["aliases"]
    out = []
    base = root / MODEL_ID
    for d in sorted(base.iterdir()) if base.is_dir() else []:
        if not d.is_dir():
            continue
        try:
            meta = json.loads((d / "metadata.json").read_text())
        except (OSError, ValueError):
            meta = {}
        metrics = meta.get("metrics") or {}
        model = metrics.get("model") or {}
        out.append({"version": d.name, "aliases": sorted(a for a, v in aliases.items() if v == d.name),
                    "created": meta.get("created", ""), "parent": meta.get("parent_version"),
                    "trained_on": meta.get("trained_on", "unreadable metadata"),
                    "auroc": model.get("auroc"),
                    "measured_on": metrics.get("evaluation_data") or "unknown data"})
    return sorted(out, key=lambda v: (v["created"], v["version"]))
