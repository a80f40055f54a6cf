"""Serve in production: gunicorn on a private unix socket, Debian's nginx in front of it.

``python -m deploy.serve`` (``make serve-production``) renders ``deploy/nginx.conf`` into a run
directory (mode 0700, ``<instance>/run`` by default), checks it with ``nginx -t``, starts
gunicorn (``service/gunicorn_conf.py``) bound to ``<run dir>/gunicorn.sock``, then nginx in the
foreground, and stays their parent: SIGTERM, SIGINT or SIGHUP stops both (nginx first, so no new
request reaches a stopping app), and so does either one exiting. Each child is also told to stop
if this process dies (``PR_SET_PDEATHSIG``), so no daemon outlives it.

Why: gunicorn's gthread workers give a thread to a connection until its request is read, and
clients that trickle header bytes take them all (issue #18, finding 2). nginx holds slow clients
on its event loop, cuts them at ``client_header_timeout``/``client_body_timeout``/
``send_timeout``, and passes gunicorn whole requests only.

Environment (besides every ``GMED_*`` setting of the app and of ``gunicorn_conf.py``, except
``GMED_BIND``, which this sets):

``GMED_PROXY_LISTEN``          ``127.0.0.1:8080``  nginx's ``listen`` address (``host:port``)
``GMED_PROXY_CLIENT_TIMEOUT``  ``10``              seconds for a client's whole header, between
                                                   two reads of its body, between two writes
``GMED_TLS_CERT``, ``GMED_TLS_KEY``                PEM files: nginx terminates TLS (1.2, 1.3)
``GMED_RUN_DIR``               ``<instance>/run``  the config, socket, pid and buffers (0700)
``GMED_NGINX``                 ``nginx`` on PATH, else ``/usr/sbin/nginx``

The body cap is the app's ``GMED_MAX_CONTENT_LENGTH`` (:mod:`service.config`), so nginx refuses
nothing the app would take.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from service.config import DEFAULTS
from service.http.headers import SECURITY_HEADERS

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = Path(__file__).resolve().parent / "nginx.conf"
TEMP_DIRS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
SOCKET_WAIT_S = 60.0
STOP_WAIT_S = 15.0
RETRY_AFTER_S = 2  # on nginx's 502 and 504, as the app's own 503 (service.http.errors)
_LISTEN = re.compile(r"^(?:(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):)?(\d{1,5})$")
ERROR_PREFIX = "/_gmed_nginx_error/"
_PLACEHOLDER = re.compile(r"@[A-Z_]+@")


class DeployError(Exception):
    """A setting or a missing program that stops the stack from starting; names the key."""


@dataclass(frozen=True, kw_only=True)
class Settings:
    listen: str
    run_dir: Path
    max_body: int
    client_timeout: int
    nginx: str
    tls_cert: Path | None = None
    tls_key: Path | None = None

    @property
    def socket(self) -> Path:
        return self.run_dir / "gunicorn.sock"

    @property
    def config_file(self) -> Path:
        return self.run_dir / "nginx.conf"


def _instance_dir() -> Path:
    from flask import Flask

    return Path(Flask("service").instance_path)  # the app's own instance folder


def _setting(env: Mapping[str, str], key: str, default: object) -> object:
    """A ``GMED_`` variable as the app reads one (JSON, else the text), else ``default``."""
    raw = env.get(f"GMED_{key}")
    if raw is None:
        return default
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _positive_int(value: object, key: str, *, upper: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= upper:
        raise DeployError(f"{key} must be an integer from 1 to {upper}")
    return value


def settings_from_env(env: Mapping[str, str]) -> Settings:
    """Read and check the settings (:class:`DeployError` naming the variable)."""
    listen = env.get("GMED_PROXY_LISTEN", "127.0.0.1:8080")
    match = _LISTEN.match(listen)
    if not match or not 1 <= int(match.group(1)) <= 65535:
        raise DeployError("GMED_PROXY_LISTEN must be host:port or port (e.g. 127.0.0.1:8080)")
    max_body = _positive_int(_setting(env, "MAX_CONTENT_LENGTH", DEFAULTS["MAX_CONTENT_LENGTH"]),
                             "GMED_MAX_CONTENT_LENGTH", upper=1 << 40)
    timeout = _positive_int(_setting(env, "PROXY_CLIENT_TIMEOUT", 10), "GMED_PROXY_CLIENT_TIMEOUT",
                            upper=300)
    cert, key = env.get("GMED_TLS_CERT"), env.get("GMED_TLS_KEY")
    if bool(cert) != bool(key):
        raise DeployError("GMED_TLS_CERT and GMED_TLS_KEY go together: set both or neither")
    for name, path in (("GMED_TLS_CERT", cert), ("GMED_TLS_KEY", key)):
        if path and not Path(path).is_file():
            raise DeployError(f"{name} is not a readable file")
    nginx = env.get("GMED_NGINX") or shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.access(nginx, os.X_OK):
        raise DeployError("nginx was not found: install Debian's nginx-light (make environment "
                          "does) or set GMED_NGINX to its path")
    run_dir = Path(env.get("GMED_RUN_DIR") or _instance_dir() / "run").resolve()
    if len(str(run_dir / "gunicorn.sock").encode()) > 100:  # sun_path holds 108 bytes
        raise DeployError("GMED_RUN_DIR is too long a path for a unix socket (100 bytes at most)")
    return Settings(listen=listen, run_dir=run_dir, max_body=max_body, client_timeout=timeout,
                    nginx=nginx, tls_cert=Path(cert).resolve() if cert else None,
                    tls_key=Path(key).resolve() if key else None)


def _nginx_string(text: str) -> str:
    """``text`` as a single-quoted nginx string (no variables: ``$`` is refused)."""
    if "$" in text:
        raise DeployError("an nginx string here may not contain '$'")
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def error_pages(s: Settings) -> dict[int, str]:
    """nginx's own answers: status -> message (the app's JSON error shape is built from it)."""
    unsure = "; the request may or may not have been carried out. Retry."
    return {
        400: "Bad Request: the request line or a header is malformed or too large",
        404: "Not Found",  # nginx's own only: a client asking for one of these pages by its path
        411: "Length Required",
        413: f"The body exceeds {s.max_body} bytes (MAX_CONTENT_LENGTH)",
        414: "URI Too Long",
        500: "Internal Server Error",
        502: "The service is not answering at the moment" + unsure,
        504: "The service did not answer in time" + unsure,
    }


def _error_locations(s: Settings) -> str:
    lines: list[str] = []
    for status, message in error_pages(s).items():
        body = json.dumps({"error": {"code": f"http-{status}", "message": message}})
        statuses = "400 494" if status == 400 else str(status)  # 494: a header too large
        # a URI, not a named location: a request line too broken to have a URI can still go
        # to it (to a named location nginx answers 500 "empty URI in redirect")
        lines.append(f"        error_page {statuses} {ERROR_PREFIX}{status};")
        lines.append(f"        location = {ERROR_PREFIX}{status} {{")
        lines.append("            internal;")
        lines.append("            default_type application/json;")
        for name, value in SECURITY_HEADERS:
            lines.append(f"            add_header {name} {_nginx_string(value)} always;")
        if status in (502, 504):
            lines.append(f"            add_header Retry-After {RETRY_AFTER_S} always;")
        lines.append(f"            return {status} {_nginx_string(body)};")
        lines.append("        }")
    return "\n".join(lines)


def render(s: Settings) -> str:
    """The nginx configuration for ``s``, from ``deploy/nginx.conf``."""
    tls = ""
    listen = s.listen
    if s.tls_cert and s.tls_key:
        listen += " ssl"
        tls = "\n".join(f"        {line}" for line in (
            f"ssl_certificate {s.tls_cert};", f"ssl_certificate_key {s.tls_key};",
            "ssl_protocols TLSv1.2 TLSv1.3;", "ssl_session_tickets off;"))
    # as root, nginx would run its workers as "nobody", who cannot reach the 0700 run dir: run
    # them as the user who owns it (the README says to serve as an unprivileged user)
    user = "user root;" if os.geteuid() == 0 else ""
    values = {"@RUN_DIR@": str(s.run_dir), "@USER@": user, "@LISTEN@": listen, "@TLS@": tls,
              "@CLIENT_TIMEOUT@": str(s.client_timeout), "@MAX_BODY@": str(s.max_body),
              "@UPSTREAM@": f"unix:{s.socket}", "@ERROR_PAGES@": _error_locations(s)}
    text = _PLACEHOLDER.sub(lambda m: values[m.group(0)], TEMPLATE.read_text())
    return text


def prepare(s: Settings) -> None:
    """Create the private run dir, write the configuration and have nginx check it."""
    s.run_dir.mkdir(parents=True, exist_ok=True)
    s.run_dir.chmod(0o700)
    for name in TEMP_DIRS:
        (s.run_dir / name).mkdir(exist_ok=True)
    s.socket.unlink(missing_ok=True)
    s.config_file.write_text(render(s))
    check = subprocess.run([s.nginx, "-t", "-q", "-p", str(s.run_dir), "-c", str(s.config_file)],
                           capture_output=True, text=True, check=False)
    if check.returncode != 0:
        raise DeployError(f"nginx refused the configuration {s.config_file}: "
                          + check.stderr.strip())


def _die_with_parent() -> None:
    """In a child, before exec: SIGTERM when the parent (this process) dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def start(s: Settings, env: Mapping[str, str]) -> list[tuple[str, subprocess.Popen[bytes]]]:
    """Start gunicorn on the socket, wait for it, then nginx. Returns (name, process) pairs."""
    gunicorn = Path(sys.executable).parent / "gunicorn"
    app_env = {**env, "GMED_BIND": f"unix:{s.socket}"}
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []
    procs.append(("gunicorn", subprocess.Popen(
        [str(gunicorn), "-c", str(ROOT / "service" / "gunicorn_conf.py"),
         "--control-socket", str(s.run_dir / "gunicorn.ctl"), "service:create_app()"],
        cwd=ROOT, env=app_env, preexec_fn=_die_with_parent)))
    deadline = time.monotonic() + SOCKET_WAIT_S
    while not s.socket.exists():
        if procs[0][1].poll() is not None or time.monotonic() > deadline:
            stop(procs)
            raise DeployError("gunicorn did not open its socket (see its log above)")
        time.sleep(0.1)
    procs.append(("nginx", subprocess.Popen(
        [s.nginx, "-p", str(s.run_dir), "-c", str(s.config_file)], env=dict(env),
        preexec_fn=_die_with_parent)))
    return procs


def stop(procs: Sequence[tuple[str, subprocess.Popen[bytes]]]) -> None:
    """Stop nginx (graceful: in-flight requests finish), then gunicorn; kill what lingers."""
    for name, proc in reversed(procs):
        if proc.poll() is None:
            proc.send_signal(signal.SIGQUIT if name == "nginx" else signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def serve(s: Settings, env: Mapping[str, str],
          log: Callable[[str], None] = lambda m: print(m, file=sys.stderr, flush=True)) -> int:
    """Run the stack until a signal (exit 0) or until one of its processes exits (1)."""
    stopping: list[int] = []

    def on_signal(signum: int, frame: object) -> None:
        stopping.append(signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    prepare(s)
    procs = start(s, env)
    scheme = "https" if s.tls_cert else "http"
    log(f"serve-production: nginx on {scheme}://{s.listen} -> gunicorn on unix:{s.socket}")
    if os.geteuid() == 0:
        log("serve-production: running as root, so are nginx's workers and gunicorn; serve as an "
            "unprivileged user in production")
    code = 0
    try:
        while not stopping:
            ended = [name for name, proc in procs if proc.poll() is not None]
            if ended:
                log(f"serve-production: {ended[0]} exited; stopping the rest")
                code = 1
                break
            time.sleep(0.2)
    finally:
        stop(procs)
        s.socket.unlink(missing_ok=True)
    return code


def check_app_config() -> None:
    """The app's own configuration check (``GMED_*``, production rules included), before
    anything starts: a missing secret is one line here, not a worker's traceback."""
    from flask import Flask

    from service.config import ConfigError, load_config

    try:
        load_config(Flask("service"), None)
    except ConfigError as e:
        raise DeployError(str(e)) from e


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    try:
        s = settings_from_env(os.environ)
        check_app_config()
        if args == ["--check"]:  # render and check the configuration, start nothing
            prepare(s)
            print(s.config_file)
            return 0
        if args:
            raise DeployError(f"unknown arguments {args}: try --help")
        return serve(s, os.environ)
    except DeployError as e:
        print(f"serve-production: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
