"""``/healthz`` (no auth) and ``/metrics`` (Prometheus text format, optional scrape token).

``/metrics`` carries aggregates only (rates, counts, ages; no subject, device or gateway
labels), so it is open by default like most exporters; set ``VITALSTREAM_API_METRICS_TOKEN``
to require ``Authorization: Bearer <token>`` (Prometheus ``authorization.credentials``). It is a
static secret rather than a JWT because a scraper cannot renew a 15-minute token.
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.responses import JSONResponse
from psycopg_pool import ConnectionPool, PoolTimeout

from ingest_service.api.db import Connection
from ingest_service.api.models import Health
from ingest_service.api.settings import ApiSettings

router = APIRouter(tags=["operations"])

#: Prometheus text exposition format 0.0.4.
PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_INGEST_WINDOW = """
SELECT count(*), coalesce(sum(readings), 0), coalesce(max(readings), 0),
       extract(epoch FROM now() - (SELECT max(first_committed_at) FROM ingest_batches)),
       avg(extract(epoch FROM first_committed_at - sent_at))
FROM ingest_batches WHERE first_committed_at > now() - interval '1 minute'
"""

_TOTALS = """
SELECT (SELECT count(*) FROM dead_letters),
       (SELECT count(*) FROM dead_letters WHERE replayed_at IS NULL),
       (SELECT coalesce(sum(inserted), 0) FROM ingest_batches),
       (SELECT coalesce(sum(duplicates), 0) FROM ingest_batches),
       (SELECT coalesce(sum(greatest(c.reltuples, 0)), 0)
          FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'readings'::regclass),
       (SELECT coalesce(sum(json_array_length(observations)), 0) FROM rule_inbox),
       (SELECT extract(epoch FROM now() - min(committed_at)) FROM rule_inbox)
"""


@dataclass(frozen=True)
class Sample:
    """One metric family with one unlabelled sample."""

    name: str
    kind: str  # "gauge" | "counter"
    help: str
    value: float | None


def render(samples: Sequence[Sample]) -> str:
    """The Prometheus text format (HELP, TYPE, sample; NaN for an unknown value)."""
    lines: list[str] = []
    for sample in samples:
        value = sample.value
        text = "NaN" if value is None or math.isnan(value) else repr(float(value))
        lines.append(f"# HELP {sample.name} {sample.help}")
        lines.append(f"# TYPE {sample.name} {sample.kind}")
        lines.append(f"{sample.name} {text}")
    return "\n".join(lines) + "\n"


def collect(conn: Connection) -> list[Sample]:
    """Read the ingest bookkeeping tables into samples (one short read-only transaction)."""
    with conn.transaction():
        window = conn.execute(_INGEST_WINDOW).fetchone()
        totals = conn.execute(_TOTALS).fetchone()
    assert window is not None and totals is not None
    batches, readings, biggest, since_commit, commit_delay = window
    dead, dead_pending, inserted, duplicates, estimate, unjudged, unjudged_age = totals

    def num(value: object) -> float | None:
        return None if value is None else float(str(value))

    return [
        Sample("vitalstream_database_up", "gauge", "1 when the database answered.", 1.0),
        Sample(
            "vitalstream_ingest_readings_per_second",
            "gauge",
            "Readings in batches committed over the last minute, per second.",
            float(readings) / 60.0,
        ),
        Sample(
            "vitalstream_ingest_batches_last_minute",
            "gauge",
            "Batches committed over the last minute.",
            float(batches),
        ),
        Sample(
            "vitalstream_ingest_batch_size_avg",
            "gauge",
            "Mean readings per batch over the last minute (NaN when there was none).",
            float(readings) / batches if batches else None,
        ),
        Sample(
            "vitalstream_ingest_batch_size_max",
            "gauge",
            "Largest batch over the last minute.",
            float(biggest),
        ),
        Sample(
            "vitalstream_ingest_lag_seconds",
            "gauge",
            "Now minus the newest batch commit (NaN before the first batch).",
            num(since_commit),
        ),
        Sample(
            "vitalstream_ingest_commit_delay_seconds",
            "gauge",
            "Mean (first commit - gateway send time) over the last minute.",
            num(commit_delay),
        ),
        Sample(
            "vitalstream_dead_letters_total",
            "counter",
            "Dead letters stored (replayed ones included).",
            float(dead),
        ),
        Sample(
            "vitalstream_dead_letters_pending",
            "gauge",
            "Dead letters not replayed yet.",
            float(dead_pending),
        ),
        Sample(
            "vitalstream_ingest_readings_inserted_total",
            "counter",
            "Readings inserted by the ingest service (from ingest_batches).",
            float(inserted),
        ),
        Sample(
            "vitalstream_ingest_duplicates_total",
            "counter",
            "Re-sent readings dropped as duplicates.",
            float(duplicates),
        ),
        Sample(
            "vitalstream_readings_estimate",
            "gauge",
            "Rows in readings per the planner statistics (pg_class.reltuples; 0 until "
            "ANALYZE/autovacuum has seen a partition).",
            float(estimate),
        ),
        Sample(
            "vitalstream_rules_backlog_readings",
            "gauge",
            "Readings stored but not judged by the rules consumer yet (rule_inbox).",
            float(str(unjudged)),
        ),
        Sample(
            "vitalstream_rules_backlog_seconds",
            "gauge",
            "Age of the oldest reading waiting for the rules (0 when none waits; a growing "
            "value means no rules consumer is running).",
            num(unjudged_age) or 0.0,
        ),
    ]


def _pool(request: Request) -> ConnectionPool[Connection]:
    pool: ConnectionPool[Connection] = request.app.state.pool
    return pool


@router.get("/healthz", response_model=Health, summary="Liveness: the database answers")
def healthz(request: Request) -> JSONResponse:
    """200 when a pooled connection runs ``SELECT 1`` within 2 s, else 503."""
    kind: str = request.app.state.database_kind
    try:
        with _pool(request).connection(timeout=2.0) as conn:
            conn.execute("SELECT 1")
    except (PoolTimeout, psycopg.Error):
        return JSONResponse(
            Health(status="unavailable", database=None).model_dump(),
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
    return JSONResponse(Health(status="ok", database=kind).model_dump())


@router.get(
    "/metrics",
    summary="Prometheus metrics (text format 0.0.4)",
    response_class=Response,
    responses={200: {"content": {PROMETHEUS_CONTENT_TYPE: {}}}},
)
def metrics(request: Request) -> Response:
    """Ingest rate, lag, batch size, dead letters, readings estimate."""
    settings: ApiSettings = request.app.state.settings
    expected = settings.api_metrics_token
    if expected is not None:
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {expected}".encode()):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                detail="metrics token required",
                headers={"WWW-Authenticate": 'Bearer realm="vitalstream-metrics"'},
            )
    try:
        with _pool(request).connection(timeout=5.0) as conn:
            samples = collect(conn)
    except (PoolTimeout, psycopg.Error):
        samples = [Sample("vitalstream_database_up", "gauge", "1 when the database answered.", 0)]
    return Response(render(samples), media_type=PROMETHEUS_CONTENT_TYPE)
