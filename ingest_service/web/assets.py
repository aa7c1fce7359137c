"""The vendored JavaScript and CSS (``static/``, see ``static/VENDORED.md``), served by name.

Only the files listed here are served (no directory walking), with a long cache lifetime:
deployments may have no internet, so nothing is ever loaded from a CDN.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Response, status

router = APIRouter(prefix="/static", include_in_schema=False)

ASSETS: dict[str, str] = {
    "htmx.min.js": "text/javascript; charset=utf-8",
    "uPlot.iife.min.js": "text/javascript; charset=utf-8",
    "uPlot.min.css": "text/css; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "charts.js": "text/javascript; charset=utf-8",
    "cgm.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "er.js": "text/javascript; charset=utf-8",
    "er.css": "text/css; charset=utf-8",
    "ecg.css": "text/css; charset=utf-8",
}


@cache
def asset(name: str) -> bytes:
    """The bytes of one shipped asset."""
    return (resources.files("ingest_service.web") / "static" / name).read_bytes()


@router.get("/{name}")
def static_asset(name: Annotated[str, Path(max_length=64)]) -> Response:
    """One of :data:`ASSETS`; 404 for anything else."""
    media_type = ASSETS.get(name)
    if media_type is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no such asset")
    return Response(
        asset(name),
        media_type=media_type,
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )
