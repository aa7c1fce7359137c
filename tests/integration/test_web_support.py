"""Helpers shared by the web-page tests (no tests here): a patient's week of home readings,
alerts, a client with a cookie session.

Named test_web_* so it sits with the files it serves; it defines no test functions.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import psycopg
from fastapi.testclient import TestClient
from test_api_support import signing_key

from ingest_service import migrate
from ingest_service.api import mint_token
from ingest_service.storage import Delivery, ReadingWriter
from ingest_service.validate import validate_message
from vitals import Batch, Reading, encode

#: Patients of the tests: GAMMA has a week of home data and alerts, DELTA one reading.
GAMMA = "pgamma"
DELTA = "pdelta"
OTHER = "pother"


def home_week(subject: str, now: datetime, days: int = 8) -> list[Reading]:
    """Twice-daily BP (mean about 142/88), glucose 4x a day, daily weight, SpO2 and heart
    rate every 15 min for the last two days: what a hypertensive diabetic measures at home."""
    out: list[Reading] = []
    start = (now - timedelta(days=days)).replace(minute=0, second=0, microsecond=0)
    for day in range(days + 1):
        base = start + timedelta(days=day)
        for hour, offset in ((7, 0.0), (20, -6.0)):
            moment = base.replace(hour=hour) + timedelta(minutes=day)
            if moment >= now:
                continue
            wave = 6 * math.sin(day / 2)
            out += [
                Reading(subject=subject, device="cuff-1", metric="bp_systolic",
                        value=round(145 + wave + offset, 1), unit="mm[Hg]", time=moment,
                        source="sim"),
                Reading(subject=subject, device="cuff-1", metric="bp_diastolic",
                        value=round(89 + wave / 2 + offset / 2, 1), unit="mm[Hg]", time=moment,
                        source="sim"),
                Reading(subject=subject, device="cuff-1", metric="heart_rate",
                        value=70 + day % 5, unit="/min", time=moment, source="sim"),
            ]  # fmt: skip
        for hour, value in ((7, 6.1), (12, 9.4), (18, 11.2), (22, 7.3)):
            moment = base.replace(hour=hour) + timedelta(minutes=30)
            if moment < now:
                out.append(
                    Reading(subject=subject, device="meter-1", metric="glucose",
                            value=value + (day % 3) * 0.4, unit="mmol/L", time=moment,
                            source="sim")
                )  # fmt: skip
        moment = base.replace(hour=6, minute=45)
        if moment < now:
            out.append(
                Reading(subject=subject, device="scale-1", metric="weight",
                        value=round(72.0 + day * 0.15, 2), unit="kg", time=moment, source="sim")
            )  # fmt: skip
    for step in range(2 * 24 * 4):
        moment = now - timedelta(minutes=15 * (step + 1))
        out.append(
            Reading(subject=subject, device="oxi-1", metric="spo2",
                    value=float(93 + step % 5), unit="%", time=moment, source="sim")
        )  # fmt: skip
    return sorted(out, key=lambda r: r.time)


def write(database_url: str, readings: list[Reading], now: datetime, chunk: int = 200) -> None:
    """Store readings through the real writer (validation, partitions, rollups)."""
    writer = ReadingWriter("postgresql")
    with psycopg.connect(database_url) as conn:
        migrate(conn)
        for index in range(0, len(readings), chunk):
            batch = Batch(
                batch_id=f"w{index}",
                gateway="gw-web",
                sent_at=now,
                readings=tuple(readings[index : index + chunk]),
            )
            payload = encode(batch)
            topic = "vs/v1/gw/gw-web/readings"
            outcome = validate_message(topic, payload, prefix="vs", now=now)
            with conn.transaction():
                writer.write(conn, [Delivery(topic, payload, now, outcome)], now)


def add_alert(
    database_url: str,
    subject: str,
    rule: str,
    severity: str,
    time: datetime,
    message: str,
    state: str = "active",
    metric: str | None = None,
    value: float | None = None,
) -> int:
    """Insert one alert row as the rules runner would; its id."""
    with psycopg.connect(database_url) as conn:
        migrate(conn)
        row = conn.execute(
            "INSERT INTO alerts (subject, rule, severity, time, message, metric, value, state)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (subject, rule, severity, time, message, metric, value, state),
        ).fetchone()
        conn.commit()
    assert row is not None
    return int(row[0])


def seed(database_url: str, now: datetime) -> dict[str, int]:
    """GAMMA's week and alerts, DELTA silent for three days, OTHER (not contracted)."""
    write(
        database_url,
        [
            *home_week(GAMMA, now),
            Reading(
                subject=DELTA,
                device="cuff-2",
                metric="bp_systolic",
                value=128.0,
                unit="mm[Hg]",
                time=now - timedelta(days=3),
                source="sim",
            ),
            Reading(
                subject=DELTA,
                device="cuff-2",
                metric="bp_diastolic",
                value=79.0,
                unit="mm[Hg]",
                time=now - timedelta(days=3),
                source="sim",
            ),
            Reading(
                subject=OTHER,
                device="cuff-3",
                metric="bp_systolic",
                value=181.0,
                unit="mm[Hg]",
                time=now - timedelta(hours=1),
                source="sim",
            ),
        ],
        now,
    )
    return {
        "crisis": add_alert(
            database_url, GAMMA, "bp_crisis_systolic", "critical", now - timedelta(hours=2),
            "SBP 182 mmHg >= 180", metric="bp_systolic", value=182.0,
        ),
        "mean": add_alert(
            database_url, GAMMA, "bp_home_mean_high", "medium", now - timedelta(hours=5),
            "7-day home mean 142/88 >= 135/85", metric="bp_systolic", value=142.0,
        ),
        "other": add_alert(
            database_url, OTHER, "bp_crisis_systolic", "critical", now - timedelta(hours=1),
            "SBP 181 mmHg >= 180", metric="bp_systolic", value=181.0,
        ),
    }  # fmt: skip


def token(
    client: TestClient,
    role: str,
    user: str,
    subject: str | None = None,
    subjects: list[str] | None = None,
) -> str:
    """A fresh token signed by the app's key."""
    return mint_token(
        signing_key(client),
        user=user,
        role=role,
        now=datetime.now(UTC),
        subject=subject,
        subjects=subjects,
    )


def log_in(
    client: TestClient,
    role: str,
    user: str,
    subject: str | None = None,
    subjects: list[str] | None = None,
) -> str:
    """Log the client in through ``/login?token=`` (cookie session); the CSRF token."""
    response = client.get(
        "/login",
        params={"token": token(client, role, user, subject, subjects)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    page = client.get(response.headers["location"])
    assert page.status_code == 200, page.text
    text: str = page.text
    marker = '"X-CSRF-Token": "'
    start = text.index(marker) + len(marker)
    return text[start : text.index('"', start)]
