"""Alert lifecycle actions against a real PostgreSQL: the API (ack, resolve, snooze, shelve,
escalate), the inbox's new buttons, transitions + audit rows, and recurrence folding into a
snoozed alert (migration 9's open-alert index)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from test_api_support import api_client, audit_rows, bearer
from test_web_support import GAMMA, add_alert, log_in, seed

from ingest_service.rules_runner import write_alerts
from vitals import Alert

HTMX = {"HX-Request": "true"}


def _alert(database_url: str, alert_id: int) -> dict[str, Any]:
    with psycopg.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT * FROM alerts WHERE id = %s", (alert_id,))
        assert cur.description is not None
        names = [c.name for c in cur.description]
        row = cur.fetchone()
    assert row is not None
    return dict(zip(names, row, strict=True))


def _transitions(database_url: str, alert_id: int) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT action, from_state, to_state, actor, reason, note, escalation_level, audit_id"
            " FROM alert_transitions WHERE alert_id = %s ORDER BY id",
            (alert_id,),
        ).fetchall()


def _audit_by_id(database_url: str) -> dict[int, tuple[str, str, str]]:
    with psycopg.connect(database_url) as conn:
        return {
            int(i): (str(actor), str(action), str(resource))
            for i, actor, action, resource in conn.execute(
                "SELECT id, actor, action, resource FROM audit_log"
            ).fetchall()
        }


def test_api_actions_write_state_transitions_and_audit(database_url: str, tmp_path: Path) -> None:
    ids = seed(database_url, datetime.now(UTC))
    crisis, mean, other = ids["crisis"], ids["mean"], ids["other"]
    with api_client(database_url, tmp_path) as client:
        doctor = bearer(client, "doctor", "dr-li", subjects=[GAMMA])
        base = "/api/v1/alerts"
        assert client.post(f"{base}/{crisis}/ack").status_code == 401

        ack = client.post(f"{base}/{crisis}/ack", json={"note": "calling"}, headers=doctor)
        assert ack.status_code == 200, ack.text
        body = ack.json()
        assert body["state"] == "acknowledged" and body["changed"] is True
        assert body["acknowledged_by"] == "doctor:dr-li"
        assert body["transitions"][0]["from_state"] == "active"
        again = client.post(f"{base}/{crisis}/ack", headers=doctor)
        assert again.status_code == 200 and again.json()["changed"] is False

        assert client.post(f"{base}/{crisis}/resolve", json={}, headers=doctor).status_code == 422
        done = client.post(f"{base}/{crisis}/resolve", json={"note": "150/90"}, headers=doctor)
        assert done.json()["state"] == "resolved" and done.json()["resolved_by"] == "doctor:dr-li"
        assert client.post(f"{base}/{crisis}/resolve", json={"note": "x"}, headers=doctor).json()[
            "changed"
        ] is False  # fmt: skip
        closed = client.post(f"{base}/{crisis}/snooze", json={"minutes": 10}, headers=doctor)
        assert closed.status_code == 409

        before = datetime.now(UTC)
        snoozed = client.post(f"{base}/{mean}/snooze", json={"minutes": 600}, headers=doctor)
        assert snoozed.status_code == 200, snoozed.text
        until = datetime.fromisoformat(snoozed.json()["snoozed_until"])
        # At most max_snooze (4 h), whatever was asked.
        assert (
            timedelta(hours=4) - timedelta(seconds=5)
            < until - before
            <= timedelta(hours=4, seconds=5)
        )
        assert snoozed.json()["state"] == "snoozed"
        bad = client.post(f"{base}/{mean}/snooze", json={"minutes": 5, "until": until.isoformat()},
                          headers=doctor)  # fmt: skip
        assert bad.status_code == 422
        assert (
            client.post(f"{base}/{mean}/shelve", json={"hours": 24}, headers=doctor).status_code
            == 422
        )
        shelved = client.post(
            f"{base}/{mean}/shelve",
            json={"hours": 24, "reason": "known white-coat"},
            headers=doctor,
        )
        assert shelved.json()["state"] == "shelved" and shelved.json()["shelved_until"]
        up = client.post(f"{base}/{mean}/escalate", json={"note": "please call"}, headers=doctor)
        assert up.json()["escalation_level"] == 1 and up.json()["contact"] == "duty_doctor"
        assert up.json()["state"] == "shelved"

        # Refusals: another doctor's patient, a role that may not act, an unknown alert.
        assert client.post(f"{base}/{other}/ack", headers=doctor).status_code == 403
        patient = bearer(client, "patient", "u1", subject=GAMMA)
        assert client.post(f"{base}/{mean}/ack", headers=patient).status_code == 403
        assert client.post(f"{base}/999999/ack", headers=doctor).status_code == 404

    assert _alert(database_url, other)["state"] == "active"
    stored = _alert(database_url, mean)
    assert stored["pending_notice"] == "escalation" and stored["escalation_level"] == 1

    steps = _transitions(database_url, crisis)
    assert [(s[0], s[1], s[2], s[3], s[5]) for s in steps] == [
        ("acknowledge", "active", "acknowledged", "doctor:dr-li", "calling"),
        ("resolve", "acknowledged", "resolved", "doctor:dr-li", "150/90"),
    ]
    steps = _transitions(database_url, mean)
    assert [s[0] for s in steps] == ["snooze", "shelve", "escalate"]
    assert steps[1][4].startswith("known white-coat (until ")
    assert steps[2][6] == 1 and steps[2][4] == "escalated to duty_doctor: please call"
    # Every transition has its audit row, and the audit row names the same alert and actor.
    audit = _audit_by_id(database_url)
    for alert_id in (crisis, mean):
        for step in _transitions(database_url, alert_id):
            actor, action, resource = audit[step[7]]
            assert resource == f"alert/{alert_id}" and actor == step[3]
            assert action.startswith("alert_")
    denied = [r for r in audit_rows(database_url) if r[1] == "write_denied"]
    assert {(r[0], r[2]) for r in denied} == {
        ("doctor:dr-li", f"alert/{other}"),
        ("patient:u1", f"alert/{mean}"),
    }


def test_a_recurrence_folds_into_the_snoozed_alert(database_url: str, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    alert_id = add_alert(
        database_url, GAMMA, "spo2_low", "high", now - timedelta(minutes=20), "SpO2 88 %"
    )
    with api_client(database_url, tmp_path) as client:
        doctor = bearer(client, "doctor", "dr-li", subjects=[GAMMA])
        response = client.post(
            f"/api/v1/alerts/{alert_id}/snooze", json={"minutes": 60}, headers=doctor
        )
        assert response.status_code == 200
    recurrence = Alert(subject=GAMMA, rule="spo2_low", severity="high", time=now,
                       message="SpO2 87 %", metric="spo2", value=87.0)  # fmt: skip
    with psycopg.connect(database_url) as conn:
        write_alerts(conn, [recurrence])
        conn.commit()
        rows = conn.execute(
            "SELECT id, state, occurrences, last_seen_at FROM alerts WHERE subject = %s"
            " AND rule = 'spo2_low'",
            (GAMMA,),
        ).fetchall()
    assert rows == [(alert_id, "snoozed", 2, now)]


def test_inbox_snooze_shelve_escalate_buttons(database_url: str, tmp_path: Path) -> None:
    ids = seed(database_url, datetime.now(UTC))
    crisis, mean = ids["crisis"], ids["mean"]
    with api_client(database_url, tmp_path) as client:
        csrf = log_in(client, "doctor", "dr-li", subjects=[GAMMA])
        inbox = client.get("/doctor/alerts")
        assert f'action="/doctor/alerts/{crisis}/snooze"' in inbox.text
        assert f'action="/doctor/alerts/{crisis}/shelve"' in inbox.text
        assert f'action="/doctor/alerts/{crisis}/escalate"' in inbox.text
        headers = {**HTMX, "X-CSRF-Token": csrf}

        snooze = client.post(f"/doctor/alerts/{crisis}/snooze", data={"minutes": "30"},
                             headers=headers)  # fmt: skip
        assert snooze.status_code == 200, snooze.text
        assert "snoozed until" in snooze.text and "snoozed" in snooze.headers["hx-trigger"]
        # Snoozed alerts stay in the open inbox, after the active ones; they can be acknowledged.
        inbox = client.get("/doctor/alerts")
        assert inbox.text.index(f'id="alert-{mean}"') < inbox.text.index(f'id="alert-{crisis}"')
        assert f'action="/doctor/alerts/{crisis}/acknowledge"' in inbox.text

        no_reason = client.post(f"/doctor/alerts/{mean}/shelve", data={"hours": "24"},
                                headers=headers)  # fmt: skip
        assert no_reason.status_code == 422 and "reason" in no_reason.text
        odd = client.post(f"/doctor/alerts/{mean}/shelve", data={"hours": "5", "note": "x"},
                          headers=headers)  # fmt: skip
        assert odd.status_code == 422  # not one of the offered shelf times
        shelved = client.post(
            f"/doctor/alerts/{mean}/shelve",
            data={"hours": "72", "note": "known; reviewed at clinic"},
            headers=headers,
        )
        assert shelved.status_code == 200 and "shelved until" in shelved.text
        up = client.post(f"/doctor/alerts/{crisis}/escalate", data={}, headers=headers)
        assert up.status_code == 200 and "escalated (level 1)" in up.text
        plain = client.post(
            f"/doctor/alerts/{crisis}/acknowledge", data={"csrf": csrf}, follow_redirects=False
        )
        assert plain.status_code == 303
    assert _alert(database_url, crisis)["state"] == "acknowledged"
    assert _alert(database_url, mean)["state"] == "shelved"
    assert [s[0] for s in _transitions(database_url, crisis)] == [
        "snooze", "escalate", "acknowledge",
    ]  # fmt: skip
    actions = [r[1] for r in audit_rows(database_url) if r[2] == f"alert/{crisis}"]
    assert actions == ["alert_snoozed", "alert_escalated", "alert_acknowledged"]
    assert all(r[3]["via"] == "web" for r in audit_rows(database_url) if r[2] == f"alert/{mean}")
