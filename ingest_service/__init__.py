"""ingest_service: MQTT consumer, validation, storage and rule runner. Never imports edge_agent.

The service class is imported lazily, so that light users of this package (``vitalstream
enrol`` needs only :mod:`ingest_service.identity`) do not load MQTT and the rules engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ingest_service.schema import migrate
from ingest_service.settings import IngestSettings

if TYPE_CHECKING:
    from ingest_service.service import IngestService

__all__ = ["IngestService", "IngestSettings", "migrate"]


def __getattr__(name: str) -> Any:
    if name == "IngestService":
        from ingest_service.service import IngestService  # noqa: PLC0415

        return IngestService
    raise AttributeError(name)
