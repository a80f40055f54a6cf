"""The patient's handout pages: ``GET /ui/assessments/<id>/handout`` (printable) and
``.../handout.pdf``, rendered by :mod:`cds.render.handout` from the stored Assessment."""

from __future__ import annotations

from flask import Response, render_template
from flask.typing import ResponseReturnValue

from cds.assessment import Assessment
from cds.render.handout import EVERYDAY as EVERYDAY
from cds.render.handout import Handout as Handout
from cds.render.handout import found_lines as found_lines
from cds.render.handout import handout as handout
from cds.render.handout import handout_pdf as handout_pdf

from ..security import patient_label
from .pages import _viewable, bp


def _for(aid: str) -> Handout | ResponseReturnValue:
    if not isinstance(row := _viewable(aid), dict):
        return row
    created = row["created_at"]
    return handout(Assessment.from_dict(row["result"]),
                   patient=patient_label.shown(row["patient_ref"]),
                   date=created.strftime("%d %B %Y") if hasattr(created, "strftime") else "")


@bp.get("/assessments/<aid>/handout")
def handout_page(aid: str) -> ResponseReturnValue:
    """The handout as a printable page."""
    if not isinstance(h := _for(aid), Handout):
        return h
    return render_template("ui/handout.html", h=h, aid=aid)


@bp.get("/assessments/<aid>/handout.pdf")
def handout_download(aid: str) -> ResponseReturnValue:
    """The handout as a PDF."""
    if not isinstance(h := _for(aid), Handout):
        return h
    return Response(handout_pdf(h), mimetype="application/pdf", headers={
        "Content-Disposition": 'inline; filename="handout.pdf"'})
