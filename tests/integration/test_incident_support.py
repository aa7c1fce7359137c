"""Helpers shared by the incident tests (no tests here): ambulance incidents stored through
the handoff service's own storage functions (``record_event``, ``record_activation``), ER
notifications as the service writes them, and monitor readings carrying the incident id.

Named test_incident_* so it sits with the files it serves; it defines no test functions.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
from fastapi.testclient import TestClient
from test_web_support import token, write

from alert_rules.pathways import assess_pathways
from ingest_service import migrate
from ingest_service.handoff import record_activation, record_event
from vitals import Reading
from vitals.incident import Atmist, Findings, IncidentEvent, Sbar, Timeline

#: The stroke patient coming in (open), and a trauma patient already handed over.
STROKE = "sim-inc-stroke"
TRAUMA = "sim-inc-trauma"
STROKE_SUBJECT = "tmp-7f3a9c"
TRAUMA_SUBJECT = "tmp-2b8e41"
AMBULANCE = "amb-12"


@dataclass(frozen=True)
class Seeded:
    """Ids of what :func:`seed_incidents` stored."""

    stroke_activation: int
    trauma_activation: int
    unsent_activation: int


def _event(kind: str, incident: str, at: datetime, n: int, **fields: object) -> IncidentEvent:
    return IncidentEvent.model_validate(
        {
            "event_id": f"{incident}-e{n}",
            "kind": kind,
            "incident": incident,
            "gateway": AMBULANCE,
            "time": at,
            **fields,
        }
    )


def ambulance_vitals(incident: str, subject: str, start: datetime, end: datetime) -> list[Reading]:
    """A monitor every 15 s over [start, end], the newest at ``end``: HR, SpO2, RR; NIBP
    every 3 minutes."""
    rng = random.Random(incident)
    out: list[Reading] = []
    steps = int((end - start).total_seconds() // 15)
    moment, step = end - timedelta(seconds=15 * steps), 0
    while moment <= end:
        values = {
            "heart_rate": 92 + 6 * rng.random(),
            "spo2": 95 + 2 * rng.random(),
            "respiratory_rate": 18 + 3 * rng.random(),
        }
        units = {"heart_rate": "/min", "spo2": "%", "respiratory_rate": "/min"}
        if step % 12 == 0:
            values |= {"bp_systolic": 168 + 8 * rng.random(), "bp_diastolic": 96 + 4 * rng.random()}
            units |= {"bp_systolic": "mm[Hg]", "bp_diastolic": "mm[Hg]"}
        for metric, value in values.items():
            out.append(
                Reading(subject=subject, device=f"{AMBULANCE}-monitor", metric=metric,
                        value=round(value, 1), unit=units[metric], time=moment, source="sim",
                        incident=incident)
            )  # fmt: skip
        moment += timedelta(seconds=15)
        step += 1
    return out


def _notify(conn: psycopg.Connection[tuple[object, ...]], activation: int, at: datetime) -> None:
    with conn.transaction():
        conn.execute(
            "INSERT INTO pathway_notifications (activation_id, channel, target, status,"
            " notified_at, activation_to_notification_ms) VALUES (%s, 'webhook',"
            " 'http://127.0.0.1:9/er', 'delivered', %s, 48.5)",
            (activation, at),
        )


def seed_incidents(database_url: str, now: datetime, *, last_data_age_s: float = 20) -> Seeded:
    """STROKE open (ETA in 9 min, stroke team pre-alerted, not acknowledged; the monitor's
    newest reading ``last_data_age_s`` old), TRAUMA handed over (trauma team acknowledged).
    A sepsis activation of STROKE with no notification stands for "no ER channel"."""
    opened = now - timedelta(minutes=20)
    with psycopg.connect(database_url) as conn:
        migrate(conn)
        record_event(
            conn,
            _event("open", STROKE, opened, 1, subject=STROKE_SUBJECT,
                   chief_complaint="Sudden left-sided weakness and slurred speech",
                   pathway="stroke",
                   timeline=Timeline(call=opened - timedelta(minutes=4), on_scene=opened)),
            opened,
        )  # fmt: skip
        findings = Findings(
            age_years=71, befast_positive=True, last_known_well=opened - timedelta(minutes=50)
        )
        incident = record_event(
            conn,
            _event("findings", STROKE, opened + timedelta(minutes=6), 2, findings=findings,
                   atmist=Atmist(age_years=71, time_of_onset=opened - timedelta(minutes=50),
                                 mechanism="Medical: suspected stroke",
                                 injuries="None seen", signs="BE-FAST positive (arm, speech)",
                                 treatment="Glucose checked 6.2 mmol/L; O2 not needed"),
                   sbar=Sbar(situation="Suspected acute stroke, onset 70 min ago",
                             recommendation="Stroke team and CT on arrival")),
            opened + timedelta(minutes=6),
        )  # fmt: skip
        assert incident is not None
        record_event(
            conn,
            _event("update", STROKE, opened + timedelta(minutes=8), 3,
                   timeline=Timeline(depart=opened + timedelta(minutes=8),
                                     eta=now + timedelta(minutes=9))),
            opened + timedelta(minutes=8),
        )  # fmt: skip
        (stroke,) = [a for a in assess_pathways({"glucose": 6.2}, findings, now) if a.activated]
        stroke_id = record_activation(
            conn, stroke.activation(STROKE, opened + timedelta(minutes=6)), opened
        )
        assert stroke_id is not None
        _notify(conn, stroke_id, opened + timedelta(minutes=6))
        with conn.transaction():
            row = conn.execute(
                "INSERT INTO pathway_activations (incident, pathway, team, reasons, guideline,"
                " finding_received_at, activated_at) VALUES (%s, 'sepsis', 'sepsis_team',"
                " '{\"qSOFA 2\"}', 'Seymour 2016', %s, %s) RETURNING id",
                (STROKE, opened, opened),
            ).fetchone()
        assert row is not None
        unsent = int(str(row[0]))

        t_open = now - timedelta(hours=2)
        record_event(
            conn,
            _event("open", TRAUMA, t_open, 1, subject=TRAUMA_SUBJECT,
                   chief_complaint="Motorcycle collision", pathway="trauma",
                   findings=Findings(injured=True, gcs_motor=5, age_years=34)),
            t_open,
        )  # fmt: skip
        (trauma,) = [
            a
            for a in assess_pathways(
                {"bp_systolic": 84.0}, Findings(injured=True, gcs_motor=5, age_years=34), now
            )
            if a.pathway == "trauma" and a.activated
        ]
        trauma_id = record_activation(conn, trauma.activation(TRAUMA, t_open), t_open)
        assert trauma_id is not None
        _notify(conn, trauma_id, t_open)
        with conn.transaction():
            conn.execute(
                "UPDATE pathway_notifications SET acknowledged_at = %s,"
                " acknowledged_by = 'er:trauma-lead' WHERE activation_id = %s",
                (t_open + timedelta(minutes=1), trauma_id),
            )
        record_event(conn, _event("handover", TRAUMA, now - timedelta(hours=1), 2),
                     now - timedelta(hours=1))  # fmt: skip
        with conn.transaction():
            conn.execute(
                "INSERT INTO handoffs (incident, bundle_id, bundle, created_at, receipt,"
                " received_at) VALUES (%s, 'b-trauma', %s::jsonb, %s, %s::jsonb, %s)",
                (
                    TRAUMA,
                    '{"resourceType": "Bundle", "id": "b-trauma", "type": "document"}',
                    now - timedelta(hours=1),
                    '{"status": "accepted", "received_by": "ED triage"}',
                    now - timedelta(hours=1),
                ),
            )
    write(
        database_url,
        ambulance_vitals(STROKE, STROKE_SUBJECT, opened, now - timedelta(seconds=last_data_age_s))
        + ambulance_vitals(TRAUMA, TRAUMA_SUBJECT, t_open, now - timedelta(hours=1)),
        now,
    )
    return Seeded(stroke_activation=stroke_id, trauma_activation=trauma_id,
                  unsent_activation=unsent)  # fmt: skip


def er_log_in(client: TestClient, role: str, user: str, target: str = "/er") -> str:
    """Log in through ``/login?token=…&next=/er`` (the ER has no start page of its own in
    ``web.login.HOME`` yet); the page's CSRF token."""
    response = client.get(
        "/login", params={"token": token(client, role, user), "next": target},
        follow_redirects=False,
    )  # fmt: skip
    assert response.status_code == 303, response.text
    text: str = client.get(response.headers["location"]).text
    marker = '"X-CSRF-Token": "'
    start = text.index(marker) + len(marker)
    return text[start : text.index('"', start)]
