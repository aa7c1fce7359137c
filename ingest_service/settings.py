"""Settings of the ingest service (``VITALSTREAM_*``; see docs/configuration.md)."""

from __future__ import annotations

from pydantic import Field

from vitals.settings import VitalstreamSettings


class IngestSettings(VitalstreamSettings):
    """Where the ingest service reads from and writes to, and how it batches."""

    database_url: str = Field(
        "postgresql://postgres@127.0.0.1:5432/vitalstream",
        description="PostgreSQL (optionally with TimescaleDB) conninfo or URI.",
    )
    broker_url: str = Field("mqtt://127.0.0.1:1883", description="MQTT broker URL.")
    topic_prefix: str = Field("vs", description="First topic level (vs/v1/gw/<id>/...).")
    ingest_client_id: str = Field(
        "vs-ingest-1",
        description="MQTT client id; its persistent session keeps unacknowledged messages.",
    )
    batch_max_readings: int = Field(5000, ge=1, description="Commit after this many readings.")
    batch_max_wait_s: float = Field(0.05, gt=0, description="... or after this many seconds.")
    rules_tick_s: float = Field(
        5.0, gt=0, description="How often stale-data rules run and rule state is checkpointed."
    )
    shared_group: str | None = Field(
        None,
        description="MQTT shared-subscription group ($share/<group>/...): workers in one group "
        "split the gateways' messages between them. None = a single worker gets everything.",
    )
