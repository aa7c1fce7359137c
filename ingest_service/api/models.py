"""Response models of the HTTP API (what OpenAPI at /docs shows clients)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from ingest_service.api.resolution import Resolution


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SubjectSummary(_Out):
    """A subject that has readings: its metrics and its newest reading time."""

    subject: str
    metrics: list[str]
    last_reading_at: datetime


class SubjectList(_Out):
    """One page of subjects, ordered by subject."""

    subjects: list[SubjectSummary]
    next_after: str | None


class Point(_Out):
    """One point of a series.

    Raw: ``value`` (None with ``no_value`` when the device sent NaN/NRes/...), ``unit`` and
    ``quality`` flags. Downsampled: ``value`` is the bucket mean, with ``min``, ``max`` and
    ``n`` (readings in the bucket); ``time`` is the bucket start.
    """

    time: datetime
    metric: str
    value: float | None
    unit: str | None = None
    no_value: str | None = None
    quality: list[str] | None = None
    min: float | None = None
    max: float | None = None
    n: int | None = None


class Readings(_Out):
    """A range query's answer."""

    subject: str
    metric: str | None
    start: datetime
    end: datetime
    resolution: Resolution
    points: list[Point]
    truncated: bool


class LatestValue(_Out):
    """The newest reading of one metric."""

    metric: str
    time: datetime
    value: float | None
    unit: str
    no_value: str | None
    device: str


class Latest(_Out):
    """The newest reading per metric of one subject."""

    subject: str
    latest: list[LatestValue]


class Gateway(_Out):
    """A gateway's last retained status and whether it went silent."""

    gateway: str
    state: str
    last_seen: datetime
    silent: bool
    silent_for_s: float
    status: dict[str, Any]


class GatewayList(_Out):
    """All gateways, with the thresholds the ``silent`` flags were computed with."""

    cadence_s: float
    silent_factor: float
    gateways: list[Gateway]


class RegisteredDevice(_Out):
    """A device registered under a gateway (``devices``: by hand, or ``auto`` on first use)."""

    device: str
    registered_by: str
    registered_at: datetime
    last_seen: datetime | None


class GatewayDetail(_Out):
    """One gateway: its last status (null before the first), its registered devices and the
    hospital its new incidents are routed to by default (null: none)."""

    gateway: str
    status: Gateway | None
    hospital: str | None
    devices: list[RegisteredDevice]


class DeadLetter(_Out):
    """A message (or one reading of one) that was not stored, with its raw bytes."""

    id: int
    received_at: datetime
    topic: str
    gateway: str | None
    batch_id: str | None
    reason_kind: str
    reason_detail: str
    payload_base64: str
    payload_bytes: int
    device: str | None
    metric: str | None
    time: datetime | None
    replayed_at: datetime | None


class DeadLetterPage(_Out):
    """One page of dead letters, newest id first; pass ``next_before`` to go on."""

    dead_letters: list[DeadLetter]
    next_before: int | None


class AlertOut(_Out):
    """A stored alert."""

    id: int
    subject: str
    rule: str
    severity: str
    time: datetime
    message: str
    metric: str | None
    value: float | None
    state: str
    created_at: datetime


class AlertPage(_Out):
    """One page of alerts, newest id first."""

    alerts: list[AlertOut]
    next_before: int | None


class AuditRowOut(_Out):
    """One audit-log row with its chain link (hex)."""

    id: int
    time: datetime
    actor: str
    action: str
    resource: str
    detail: dict[str, Any]
    algorithm: str
    prev_hash: str
    hash: str


class AuditPage(_Out):
    """One page of the audit log, newest id first."""

    rows: list[AuditRowOut]
    next_before: int | None


class Health(_Out):
    """``/healthz``: whether the database answers."""

    status: str
    database: str | None
