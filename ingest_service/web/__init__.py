"""Server-rendered pages (FastAPI + Jinja2 + htmx, charts with uPlot): docs/web.md.

``router`` holds every page; ``ingest_service.api.app.create_app`` includes it, so
``vitalstream serve`` serves the pages beside the API with the same tokens, roles and audit.
"""

from __future__ import annotations

from fastapi import APIRouter

from ingest_service.web import (
    assets,
    cgm_pages,
    doctor,
    ecg,
    er,
    fhir_export,
    followup,
    login,
    patient,
)

router = APIRouter()
for _module in (login, doctor, patient, cgm_pages, fhir_export, er, followup, ecg, assets):
    router.include_router(_module.router)

__all__ = ["router"]
