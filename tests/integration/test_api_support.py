"""Helpers shared by the API tests (no tests here): an app on a fresh database, tokens, data.

Named test_api_* so it sits with the files it serves; it defines no test functions.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import psycopg
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ingest_service import migrate
from ingest_service.api import ApiSettings, create_app, mint_token
from ingest_service.storage import Delivery, ReadingWriter
from ingest_service.validate import validate_message
from vitals import Batch, Reading, encode

#: Readings are written as if received at NOW; the series start an hour before.
NOW = datetime(2026, 11, 25, 11, 0, tzinfo=UTC)
T0 = NOW - timedelta(hours=1)
ALPHA = "palpha"
BETA = "pbeta"


@contextmanager
def api_client(database_url: str, key_dir: Path, **overrides: Any) -> Iterator[TestClient]:
    """A TestClient on a fresh app (lifespan runs: migrations, pool) over ``database_url``."""
    settings = ApiSettings(
        database_url=database_url, api_key_file=key_dir / "api-token.key", **overrides
    )
    with TestClient(create_app(settings)) as client:
        yield client


def signing_key(client: TestClient) -> bytes:
    """The key the client's app signs and checks tokens with (loaded at start-up)."""
    key: bytes = cast(FastAPI, client.app).state.signing_key
    return key


def bearer(client: TestClient, role: str, user: str, **claims: Any) -> dict[str, str]:
    """An Authorization header with a fresh token signed by the app's key."""
    token = mint_token(signing_key(client), user=user, role=role, now=datetime.now(UTC), **claims)
    return {"Authorization": f"Bearer {token}"}


def alpha_spo2() -> list[Reading]:
    """120 SpO2 readings of ALPHA, one every 30 s from T0, values 90..99 repeating."""
    return [
        Reading(
            subject=ALPHA,
            device="oxi-a",
            metric="spo2",
            value=90.0 + (i % 10),
            unit="%",
            time=T0 + timedelta(seconds=30 * i),
            source="sim",
        )
        for i in range(120)
    ]


def extra_readings() -> list[Reading]:
    """ALPHA's heart rate (twice, the newest last), a no-value SpO2-less metric, BETA's one."""
    return [
        Reading(subject=ALPHA, device="hr-a", metric="heart_rate", value=71.0, unit="/min",
                time=T0 + timedelta(minutes=1), source="sim"),
        Reading(subject=ALPHA, device="hr-a", metric="heart_rate", value=74.0, unit="/min",
                time=T0 + timedelta(minutes=50), source="sim"),
        Reading(subject=BETA, device="oxi-b", metric="spo2", value=97.0, unit="%",
                time=T0 + timedelta(minutes=10), source="sim"),
    ]  # fmt: skip


def write_readings(database_url: str, readings: list[Reading], chunk: int = 50) -> None:
    """Store readings through the real writer (validation, partitions, rollups)."""
    writer = ReadingWriter("postgresql")
    with psycopg.connect(database_url) as conn:
        migrate(conn)
        for index in range(0, len(readings), chunk):
            batch = Batch(
                batch_id=f"b{index}",
                gateway="gw-1",
                sent_at=NOW,
                readings=tuple(readings[index : index + chunk]),
            )
            payload = encode(batch)
            topic = "vs/v1/gw/gw-1/readings"
            outcome = validate_message(topic, payload, prefix="vs", now=NOW)
            with conn.transaction():
                writer.write(conn, [Delivery(topic, payload, NOW, outcome)], NOW)


def audit_rows(database_url: str) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(actor, action, resource, detail) of every audit row, oldest first."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT actor, action, resource, detail FROM audit_log ORDER BY id"
        ).fetchall()
    return [(str(a), str(b), str(c), dict(d)) for a, b, c, d in rows]
