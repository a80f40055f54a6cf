"""Content negotiation, once for every route that offers more than one representation.

:func:`negotiate` picks, from a route's offers (media type -> what renders it), the one the
request's ``Accept`` prefers. The first offer is the default (no ``Accept``) and wins every
tie, so a route that offers JSON first answers ``*/*`` with JSON and FHIR only when asked by
name. When ``Accept`` names types and none is offered, the answer is 406 listing the offers
(raised before anything is assessed or stored).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from flask import request

from .errors import ServiceError

T = TypeVar("T")


class NotAcceptable(ServiceError):
    """``Accept`` names no representation this route offers (406); the message lists them."""

    status = 406
    code = "not-acceptable"


def negotiate(offers: Mapping[str, T]) -> tuple[str, T]:
    """The media type and renderer (or any value) of ``offers`` the request prefers: the highest
    quality, the earlier offer on a tie (so the first wins every wildcard), the first when there
    is no ``Accept``. :class:`NotAcceptable` when ``Accept`` excludes them all."""
    default = next(iter(offers))
    accept = request.headers.get("Accept", "").strip()
    if not accept or accept == "*/*":  # the first offer wins every tie
        return default, offers[default]
    if accept in offers:  # one type, offered, no parameters: it alone has a quality above 0
        return accept, offers[accept]
    best = request.accept_mimetypes.best_match(list(offers))
    if best is None:
        raise NotAcceptable("Accept names no representation of this resource; offered: "
                            + ", ".join(offers))
    return best, offers[best]
