"""Helpers shared by the ER-of-one-hospital page tests (no tests here): two hospitals' ER
password accounts, the seeded STROKE and TRAUMA incidents routed to hospital A through the
ambulance's gateway route, an incident opened for hospital B and one not routed anywhere, both
with monitor readings (so a board that leaked them would show their "last data").

Named test_er_* so it sits with the files it serves; it defines no test functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from test_api_support import api_client, bearer
from test_auth_support import PASSWORD, add_user
from test_incident_support import AMBULANCE, Seeded, ambulance_vitals, seed_incidents
from test_web_support import write

HOSPITAL_A = "h-ruijin"
HOSPITAL_B = "h-zhongshan"
#: ER password accounts of hospital A and of hospital B.
ER_A = "er-zhao"
ER_B = "er-qian"
#: An incident routed to hospital B, and one routed to no hospital yet.
B_INCIDENT = "inc-b-chest"
UNROUTED = "inc-unrouted"
B_COMPLAINT = "Crushing central chest pain"
UNROUTED_COMPLAINT = "Fall at home, hip pain"


@dataclass(frozen=True)
class Hospitals:
    """What :func:`seed_hospitals` stored."""

    seeded: Seeded
    b_subject: str
    unrouted_subject: str


def seed_hospitals(database_url: str, key_dir: Path) -> Hospitals:
    """Accounts, routes and incidents, each through the code that stores them in production
    (``users.add_user``, ``PUT /api/v1/gateways/{id}/route``, the handoff service's
    ``record_event``, ``POST /api/v1/incidents``, the readings writer)."""
    add_user(database_url, ER_A, "er", hospital=HOSPITAL_A)
    add_user(database_url, ER_B, "er", hospital=HOSPITAL_B)
    with api_client(database_url, key_dir) as client:
        routed = client.put(
            f"/api/v1/gateways/{AMBULANCE}/route",
            json={"hospital": HOSPITAL_A, "reason": "dispatch plan"},
            headers=bearer(client, "admin", "ops"),
        )
        assert routed.status_code == 200, routed.text
    now = datetime.now(UTC)
    seeded = seed_incidents(database_url, now)  # STROKE and TRAUMA: routed to A by the trigger
    with api_client(database_url, key_dir) as client:
        admin = bearer(client, "admin", "ops")
        b = client.post(
            "/api/v1/incidents",
            json={"gateway": "amb-7", "incident": B_INCIDENT, "hospital": HOSPITAL_B,
                  "chief_complaint": B_COMPLAINT},
            headers=admin,
        )  # fmt: skip
        assert b.status_code == 201 and b.json()["hospital"] == HOSPITAL_B, b.text
        unrouted = client.post(
            "/api/v1/incidents",
            json={"gateway": "amb-9", "incident": UNROUTED, "chief_complaint": UNROUTED_COMPLAINT},
            headers=admin,
        )
        assert unrouted.status_code == 201 and unrouted.json()["hospital"] is None, unrouted.text
    b_subject = str(b.json()["incident"]["subject"])
    unrouted_subject = str(unrouted.json()["incident"]["subject"])
    # The helper names one monitor for every incident: the two series are 7 s apart so that
    # no reading of one duplicates (device, metric, time) a reading of the other.
    write(
        database_url,
        ambulance_vitals(B_INCIDENT, b_subject, now - timedelta(minutes=10), now)
        + ambulance_vitals(
            UNROUTED, unrouted_subject, now - timedelta(minutes=10), now - timedelta(seconds=7)
        ),
        now,
    )
    return Hospitals(seeded=seeded, b_subject=b_subject, unrouted_subject=unrouted_subject)


def password_log_in(client: TestClient, username: str, target: str = "/er") -> str:
    """Log in through the ``/login`` password form (as a person does); the CSRF token of the
    page it lands on, which must be ``target``."""
    response = client.post(
        "/login",
        data={"username": username, "password": PASSWORD, "next": target},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == target
    text: str = client.get(target).text
    marker = '"X-CSRF-Token": "'
    start = text.index(marker) + len(marker)
    return text[start : text.index('"', start)]
