"""The HTTP service: CDS Hooks 2.0, FHIR R4 and a JSON API on Flask, served by gunicorn."""

from .app import create_app as create_app

__all__ = ["create_app"]
