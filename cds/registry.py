"""Reading the model registry: ``models/registry.json`` maps aliases to versions.

Only reading lives here (the core and the running service need it, and it must stay light);
changing an alias, with its gate and history, is :mod:`training.registry`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REGISTRY_FILE = "registry.json"


def read_registry(root: Path) -> dict[str, Any]:
    """The registry (empty when there is none yet)."""
    path = root / REGISTRY_FILE
    if not path.is_file():
        return {"aliases": {}, "history": []}
    registry: dict[str, Any] = json.loads(path.read_text())
    registry.setdefault("aliases", {})
    registry.setdefault("history", [])
    return registry


def read_alias(root: Path, alias: str) -> str | None:
    """The version an alias points at now (``None`` when unset)."""
    version = read_registry(root)["aliases"].get(alias)
    return str(version) if version is not None else None


def alias_stamp(root: Path) -> tuple[int, int]:
    """``(mtime_ns, size)`` of the registry file: changes whenever an alias moves (cheap to poll)."""
    try:
        st = (root / REGISTRY_FILE).stat()
    except FileNotFoundError:
        return (0, 0)
    return (st.st_mtime_ns, st.st_size)
