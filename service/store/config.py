"""Opening the store: its configuration keys, the secret it keeps, one store per app.

The store's own keys (documented with the others in :mod:`service.config`, whose defaults
include :data:`DEFAULTS`):

* ``DATABASE_URL``: a SQLAlchemy URL (:class:`~service.store.sql.SQLStore`; ``None``: SQLite
  in the instance folder), or ``memory://`` (:class:`~service.store.memory.MemoryStore`: kept
  in this process only, for tests and throwaway runs);
* ``SQLITE_SYNCHRONOUS``: ``FULL`` or ``NORMAL``;
* ``STORE_BUSY_TIMEOUT``: seconds a SQLite write waits for another writer's lock.

The store also keeps the secret every key of the service is derived from
(:mod:`service.security.keys`): ``PSEUDONYM_SECRET`` when configured, else (development only: production
refuses to start without one) a random key kept in ``<instance>/pseudonym.key`` (0600), created
once by the first worker. :func:`init_app` opens the store lazily (the engine after gunicorn
forks); :func:`get_store` is how every route reaches it, as a
:class:`~service.store.interface.Store`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask, current_app

from .interface import Store

_EXT = "gmed.store"
MEMORY_URL = "memory://"
SYNCHRONOUS = ("FULL", "NORMAL")
DEFAULTS: dict[str, Any] = {
    "DATABASE_URL": None,
    "SQLITE_SYNCHRONOUS": "FULL",
    "STORE_BUSY_TIMEOUT": 5.0,
}


@dataclass(frozen=True, repr=False)
class StoreConfig:
    """What opening a store needs (``repr`` shows no secret)."""

    url: str
    secret: bytes
    synchronous: str = "FULL"
    busy_timeout: float = 5.0


def instance_secret(instance: Path) -> bytes:
    """The instance's random secret, ``<instance>/pseudonym.key``, created once (0600)."""
    path = instance / "pseudonym.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".pseudonym.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(os.urandom(32).hex().encode())
        try:
            os.link(tmp, path)  # atomic: the first worker's key wins, the others read it
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_bytes()


def from_app(app: Flask) -> StoreConfig:
    """The store's configuration from ``app.config``, checked (a ``ValueError`` names the key)."""
    synchronous = str(app.config["SQLITE_SYNCHRONOUS"]).upper()
    if synchronous not in SYNCHRONOUS:
        raise ValueError("SQLITE_SYNCHRONOUS must be FULL or NORMAL")
    busy_timeout = float(app.config["STORE_BUSY_TIMEOUT"])
    url = app.config["DATABASE_URL"]
    if not url:
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{Path(app.instance_path) / 'gmed.sqlite3'}"
    configured = app.config["PSEUDONYM_SECRET"]
    secret = str(configured).encode() if configured else instance_secret(Path(app.instance_path))
    return StoreConfig(str(url), secret, synchronous, busy_timeout)


def open_store(config: StoreConfig) -> Store:
    """The store ``config.url`` names (the database is reached on first use)."""
    if config.url == MEMORY_URL:
        from .memory import MemoryStore
        return MemoryStore(config.secret)
    from .sql import SQLStore
    return SQLStore(config.url, config.secret, synchronous=config.synchronous,
                    busy_timeout=config.busy_timeout)


def init_app(app: Flask) -> None:
    """Open this app's store (before :func:`service.security.keys.init_app`: the keys come from it)."""
    app.extensions[_EXT] = open_store(from_app(app))


def get_store(app: Flask | None = None) -> Store:
    """This app's store (its database reached on first use in this process)."""
    store: Store = (app or current_app).extensions[_EXT]
    return store


def ready(app: Flask | None = None) -> bool:
    """Whether this app's store answers (``/readyz``; a worker's check before it takes
    requests)."""
    return get_store(app).ping()
