"""Settings of the ingest service (``VITALSTREAM_*``; see docs/configuration.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from vitals import Severity
from vitals.settings import VitalstreamSettings, default_data_dir


class PayloadSealingSettings(VitalstreamSettings):
    """The SM4 payload layer's settings, shared by every service that reads gateway topics
    (ingest and handoff; ingest_service.sealing, docs/security.md)."""

    data_dir: Path = Field(
        default_factory=default_data_dir, description="Where vitalstream keeps its files."
    )
    sealing_policy: Literal["off", "optional", "required"] = Field(
        "off",
        description="SM4 payload layer: off; optional (open sealed payloads, pass clear ones); "
        "required (dead-letter clear payloads as sealed_required). Acks are sealed for gateways "
        "that seal.",
    )
    sealing_key_dir: Path | None = Field(
        None,
        description="Directory of the gateways' SM4 keys <gateway>.k<N>.sm4 (16 bytes, mode "
        "0600) written by `vitalstream pki sm4-key`; default <data_dir>/sm4-keys.",
    )


class ConsumerSettings(PayloadSealingSettings):
    """What every platform consumer of gateway topics (ingest, handoff) needs besides the SM4
    layer: TLS to the broker."""

    # -- TLS to the broker (mqtts:// broker_url; docs/security.md) ------------------------------
    tls_ca_file: str | None = Field(
        None, description="CA of the broker's certificate (PEM); None = the system's store."
    )
    tls_cert_file: str | None = Field(
        None, description="This service's client certificate (PEM), for mutual TLS."
    )
    tls_key_file: str | None = Field(None, description="Its private key (PEM, mode 0600).")


class IngestSettings(ConsumerSettings):
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
    device_policy: Literal["register", "quarantine"] = Field(
        "register",
        description="Readings from an unregistered device: register it on first sight, or "
        "dead-letter them as unknown_device until an operator registers it.",
    )
    rules_tick_s: float = Field(
        5.0, gt=0, description="How often stale-data rules run and rule state is checkpointed."
    )
    rules_consumer: bool = Field(
        True,
        description="Run a rules consumer in this process (one consumer leads per database, "
        "the others stand by). Off for workers whose supervisor judges (ingest run --workers).",
    )
    shared_group: str | None = Field(
        None,
        description="MQTT shared-subscription group ($share/<group>/...): workers in one group "
        "split the gateways' messages between them. None = a single worker gets everything.",
    )
    # -- SM4 payload layer (ingest_service.sealing; docs/security.md) ---------------------------
    # -- alert notifications (ingest_service.notifier, docs/notifications.md) -------------------
    notify_urls: str = Field(
        "",
        description="Comma-separated apprise URLs (mailto://, json://, jsons://, chat-app "
        "webhooks) told about new alerts. Empty = no notifications.",
    )
    notify_min_severity: Severity = Field(
        "high", description="Only alerts of this severity or higher are notified."
    )
    notify_quiet_hours: str | None = Field(
        None,
        pattern=r"^\s*\d{1,2}:\d{2}\s*-\s*\d{1,2}:\d{2}\s*$",
        description="Local HH:MM-HH:MM window (e.g. 22:00-07:00) in which only critical alerts "
        "are notified; the others stay on the doctor's page. None = no quiet hours.",
    )
    notify_timezone: str = Field(
        "Asia/Shanghai", description="Time zone of quiet hours and of times in messages."
    )
    notify_base_url: str = Field(
        "http://127.0.0.1:8000",
        description="Base URL of the doctor's pages; messages link {base}/doctor/subjects/<id>.",
    )
    notify_attempts: int = Field(5, ge=1, description="Attempts per notification and channel.")
    notify_backoff_s: float = Field(
        2.0, gt=0, description="Wait after the first failed attempt; doubles each time."
    )
    notify_backoff_max_s: float = Field(60.0, gt=0, description="Longest wait between attempts.")
    notify_queue_size: int = Field(
        1000,
        ge=1,
        description="Notices waiting per channel; beyond that, new ones are dropped (logged).",
    )
