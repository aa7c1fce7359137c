"""ingest_service: MQTT consumer, validation, storage and rule runner. Never imports edge_agent."""

from ingest_service.schema import migrate
from ingest_service.service import IngestService
from ingest_service.settings import IngestSettings

__all__ = ["IngestService", "IngestSettings", "migrate"]
