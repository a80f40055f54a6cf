"""Reading the model registry: ``models/registry.json`` maps aliases to versions.

Only reading lives here (the core and the running service need it, and it must stay light);
changing an alias, with its gate and history, is :mod:`training.registry`.

Alias and version names are one path component each, by a strict pattern (:data:`NAME`):
letters, digits, ``.``, ``_``, ``-``, starting with a letter or digit, at most 64 characters. A
name is checked on every read and every write, and a registry that maps an alias to anything
else is refused, so no alias can point outside ``models/gmed-driver/`` (issue #18, finding 11:
``cds models promote ../../../x`` used to write such an alias, and the service followed it).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from .errors import ModelUnavailable

REGISTRY_FILE = "registry.json"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class InvalidName(ModelUnavailable):
    """An alias or version name that is not one safe path component (nothing is resolved)."""

    code = "invalid-name"


def check_name(name: str, what: str = "version") -> str:
    """``name`` if it is a valid alias/version name (:data:`NAME`), else :class:`InvalidName`."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        shown = repr(name)[:80]
        raise InvalidName(f"{what} {shown}: not a valid name (letters, digits, '.', '_', '-', "
                          "starting with a letter or digit, at most 64 characters; no path)")
    return name


def read_registry(root: Path) -> dict[str, Any]:
    """The registry (empty when there is none yet)."""
    path = root / REGISTRY_FILE
    if not path.is_file():
        return {"aliases": {}, "history": []}
    try:
        registry: dict[str, Any] = json.loads(path.read_text())
    except ValueError as e:
        raise ModelUnavailable(f"{REGISTRY_FILE} is not valid JSON") from e
    if not isinstance(registry, dict) or not isinstance(registry.setdefault("aliases", {}), dict) \
            or not isinstance(registry.setdefault("history", []), list):
        raise ModelUnavailable(f"{REGISTRY_FILE}: not a registry (aliases and history)")
    for alias, version in registry["aliases"].items():
        check_name(alias, "alias")
        check_name(version, f"{REGISTRY_FILE}: alias '{alias}' points at version")
    return registry


def read_alias(root: Path, alias: str) -> str | None:
    """The version an alias points at now (``None`` when unset); names checked (:data:`NAME`)."""
    version = read_registry(root)["aliases"].get(check_name(alias, "alias"))
    return str(version) if version is not None else None


def alias_stamp(root: Path) -> tuple[int, int]:
    """``(mtime_ns, size)`` of the registry file: changes whenever an alias moves (cheap to poll)."""
    try:
        st = (root / REGISTRY_FILE).stat()
    except FileNotFoundError:
        return (0, 0)
    return (st.st_mtime_ns, st.st_size)
