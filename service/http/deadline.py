"""The request deadline: no request holds a worker much past ``REQUEST_DEADLINE`` seconds.

Cooperative, not preemptive: Python cannot safely stop a thread in the middle of a model call or
a commit, so the request checks its deadline at stage boundaries and bounds every blocking wait
by the time it has left.

* ``start()`` (a ``before_request`` hook, registered first) sets the deadline: now +
  ``REQUEST_DEADLINE`` on the monotonic clock; ``0`` means no deadline.
* ``check(stage)`` raises :class:`~service.http.errors.DeadlineExceeded` once the deadline has passed.
  It is called after the body is read (:func:`service.http.payload.json_body`), before each FHIR fetch
  (:func:`bounded`, in :mod:`service.ehr.prefetch`) and must be called before the store write: the
  answer is then a 503 with ``Retry-After`` (an OperationOutcome on CDS Hooks and FHIR routes,
  the JSON error elsewhere), and nothing of the request was stored.
* ``remaining()`` is what a blocking call may wait: a FHIR fetch's timeout, the store writer's
  wait (``Store.write(work, timeout=remaining())``: a unit not taken in time is withdrawn, so a
  503 never follows a commit).
* ``bounded(timeout, stage)`` = ``check(stage)`` then ``min(timeout, remaining())``.

Outside a request (the CLI, a background thread, a test calling the store directly) there is no
deadline: ``remaining()`` is ``math.inf`` and ``check()`` never raises.
"""

from __future__ import annotations

import math
import time

from flask import Flask, current_app, g, has_request_context

from .errors import DeadlineExceeded

_KEY = "gmed_deadline"


def start() -> None:
    """Set this request's deadline from ``REQUEST_DEADLINE`` (seconds; 0 = none)."""
    seconds = float(current_app.config["REQUEST_DEADLINE"])
    setattr(g, _KEY, time.monotonic() + seconds if seconds > 0 else math.inf)


def remaining() -> float:
    """Seconds this request has left: ``> 0`` before its deadline, ``0.0`` once it has passed,
    ``math.inf`` when there is no deadline (``REQUEST_DEADLINE=0``, or no request context).

    Contract for blocking calls: wait at most ``remaining()`` seconds, and treat ``0.0`` as
    "do not start". Never returns a negative number, never raises.
    """
    if not has_request_context():
        return math.inf
    deadline: float = g.get(_KEY, math.inf)
    if deadline == math.inf:
        return math.inf
    return max(0.0, deadline - time.monotonic())


def check(stage: str) -> None:
    """Raise :class:`DeadlineExceeded` if this request's deadline has passed.

    ``stage`` names the boundary (``"body"``, ``"prefetch"``, ``"store"``) for the log; it never
    reaches the client. Call it only before work whose effects would be lost by a 503 anyway
    (never between a commit and its answer).
    """
    if remaining() <= 0.0:
        raise DeadlineExceeded(stage)


def bounded(timeout: float, stage: str) -> float:
    """``timeout`` cut to the time left, after :func:`check`: the wait a blocking call may make."""
    check(stage)
    return min(timeout, remaining())


def init_app(app: Flask) -> None:
    """Start every request's clock (register before the other hooks: its time counts too)."""
    app.before_request(start)
