"""The ER pages for an ``er`` account of one hospital (issue 10: "incidents routed to their
hospital"), with the TestClient on a real database. The account logs in through the ``/login``
password form, so its hospital comes from ``users.hospital`` into the token as in production.

- the board (and its rows fragment) lists only the incidents routed to the account's hospital;
- another hospital's incident, or one routed nowhere yet: the incident page, its fragment, its
  stream and its Bundle answer the 403 page and append ``read_denied`` (``reason: other
  hospital``); the acknowledgement ``write_denied``, and nothing is acknowledged;
- its own hospital's incidents work as before (page, fragment, Bundle, acknowledgement);
- an ``er`` account of no hospital still sees every incident;
- the ECG pages read the same policy: the patients of the hospital's incidents, nobody else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from test_api_support import api_client, audit_rows
from test_er_hospital_support import (
    B_COMPLAINT,
    B_INCIDENT,
    ER_A,
    ER_B,
    HOSPITAL_A,
    HOSPITAL_B,
    UNROUTED,
    UNROUTED_COMPLAINT,
    password_log_in,
    seed_hospitals,
)
from test_incident_support import STROKE, STROKE_SUBJECT, TRAUMA, er_log_in

OTHER_HOSPITAL = "This incident is routed to another hospital."


def _denials(database_url: str, actor: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(action, resource, detail) of the actor's refused requests, oldest first."""
    return [
        (action, resource, detail)
        for who, action, resource, detail in audit_rows(database_url)
        if who == actor and action in {"read_denied", "write_denied"}
    ]


def _acknowledged_by(database_url: str, activation: int) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT acknowledged_by FROM pathway_notifications WHERE activation_id = %s",
            (activation,),
        ).fetchall()


def test_an_er_of_one_hospital_sees_only_its_incidents_on_the_board(
    database_url: str, tmp_path: Path
) -> None:
    seed_hospitals(database_url, tmp_path)
    with api_client(database_url, tmp_path) as client:
        password_log_in(client, ER_A)
        board = client.get("/er")
        assert board.status_code == 200, board.text
        html = board.text
        assert f'id="incident-{STROKE}"' in html and f'id="incident-{TRAUMA}"' in html
        assert "Sudden left-sided weakness" in html
        for hidden in (B_INCIDENT, UNROUTED, B_COMPLAINT, UNROUTED_COMPLAINT):
            assert hidden not in html
        rows = client.get("/er/rows")
        assert rows.status_code == 200
        assert f'id="incident-{STROKE}"' in rows.text and B_INCIDENT not in rows.text

        page = client.get(f"/er/incidents/{STROKE}")
        assert page.status_code == 200, page.text
        assert "Sudden left-sided weakness" in page.text
        fragment = client.get(f"/er/incidents/{STROKE}/activations")
        assert fragment.status_code == 200 and 'id="incident-live-part"' in fragment.text
        bundle = client.get(f"/er/incidents/{TRAUMA}/bundle.json")
        assert bundle.status_code == 200 and bundle.json()["resourceType"] == "Bundle"
    boards = [d for a, act, r, d in audit_rows(database_url) if r == "web/er/board"]
    assert boards and all(d["hospital"] == HOSPITAL_A for d in boards)
    assert all(d["incidents"] == [STROKE, TRAUMA] for d in boards)
    assert _denials(database_url, f"er:{ER_A}") == []


def test_another_hospitals_incident_is_a_403_page_with_an_audit_row(
    database_url: str, tmp_path: Path
) -> None:
    hospitals = seed_hospitals(database_url, tmp_path)
    stroke_ack = f"/er/incidents/{STROKE}/activations/{hospitals.seeded.stroke_activation}/ack"
    with api_client(database_url, tmp_path) as client:
        client.headers["Accept-Language"] = "en-GB,en;q=0.8"  # the error page's language
        password_log_in(client, ER_A)
        for incident, complaint in ((B_INCIDENT, B_COMPLAINT), (UNROUTED, UNROUTED_COMPLAINT)):
            for url in (
                f"/er/incidents/{incident}",
                f"/er/incidents/{incident}/activations",
                f"/er/incidents/{incident}/events",
                f"/er/incidents/{incident}/bundle.json",
            ):
                refused = client.get(url)
                assert refused.status_code == 403, url
                assert refused.headers["content-type"].startswith("text/html")
                assert OTHER_HOSPITAL in refused.text
                assert complaint not in refused.text
        assert client.get("/er/incidents/no-such-incident").status_code == 404
        client.get("/logout")

        # Hospital B's ER cannot acknowledge A's pre-alert (its CSRF token is valid: the
        # refusal is the hospital's, not the form's).
        csrf_b = password_log_in(client, ER_B)
        refused = client.post(
            stroke_ack,
            data={"note": "not ours"},
            headers={"HX-Request": "true", "X-CSRF-Token": csrf_b},
        )
        assert refused.status_code == 403 and OTHER_HOSPITAL in refused.text
        assert client.get(f"/er/incidents/{STROKE}").status_code == 403
        assert _acknowledged_by(database_url, hospitals.seeded.stroke_activation) == [(None,)]
        client.get("/logout")

        csrf_a = password_log_in(client, ER_A)
        done = client.post(
            stroke_ack,
            data={"note": "CT 2 ready"},
            headers={"HX-Request": "true", "X-CSRF-Token": csrf_a},
        )
        assert done.status_code == 200, done.text
    assert _acknowledged_by(database_url, hospitals.seeded.stroke_activation) == [(f"er:{ER_A}",)]

    denied_a = _denials(database_url, f"er:{ER_A}")
    assert {(a, d["reason"]) for a, _, d in denied_a} == {("read_denied", "other hospital")}
    by_resource = {(r, d["hospital"], d["subject"]) for _, r, d in denied_a}
    assert (f"web/er/incident/{B_INCIDENT}", HOSPITAL_B, hospitals.b_subject) in by_resource
    assert (f"web/er/incident/{UNROUTED}", None, hospitals.unrouted_subject) in by_resource
    assert (
        f"web/er/incident/{B_INCIDENT}/bundle",
        HOSPITAL_B,
        hospitals.b_subject,
    ) in by_resource
    # page, fragment and stream share the page's resource; the Bundle has its own
    assert len(denied_a) == 8
    denied_b = _denials(database_url, f"er:{ER_B}")
    assert [(a, r, d["reason"], d["hospital"]) for a, r, d in denied_b] == [
        (
            "write_denied",
            f"incident/{STROKE}/activation/{hospitals.seeded.stroke_activation}",
            "other hospital",
            HOSPITAL_A,
        ),
        ("read_denied", f"web/er/incident/{STROKE}", "other hospital", HOSPITAL_A),
    ]
    acks = [
        (who, d["via"])
        for who, a, _, d in audit_rows(database_url)
        if a == "activation_acknowledged"
    ]
    assert acks == [(f"er:{ER_A}", "web")]
    # A refused read shows nothing: no read row names B's or the unrouted incident's patient.
    reads = [d for who, a, _, d in audit_rows(database_url) if a == "read" and who == f"er:{ER_A}"]
    shown = {d.get("subject") for d in reads} | {s for d in reads for s in d.get("subjects", [])}
    assert not shown & {hospitals.b_subject, hospitals.unrouted_subject}


def test_an_er_without_a_hospital_and_admin_still_see_every_incident(
    database_url: str, tmp_path: Path
) -> None:
    seed_hospitals(database_url, tmp_path)
    with api_client(database_url, tmp_path) as client:
        for role, user in (("er", "er-dispatch"), ("admin", "ops")):
            er_log_in(client, role, user)
            html = client.get("/er").text
            for incident in (STROKE, TRAUMA, B_INCIDENT, UNROUTED):
                assert f'id="incident-{incident}"' in html, (role, incident)
            page = client.get(f"/er/incidents/{B_INCIDENT}")
            assert page.status_code == 200 and B_COMPLAINT in page.text
            client.get("/logout")
    assert _denials(database_url, "er:er-dispatch") == []


def _store_snippet(database_url: str, subject: str, incident: str | None, device: str) -> int:
    """One SYNTHETIC 10 s ECG snippet (a sine, not a patient's) in ``waveforms``; its id."""
    samples = (np.sin(np.arange(2500) / 250 * 2 * np.pi) * 100).astype("<i2")
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "INSERT INTO waveforms (device, channel, start_time, subject, gateway,"
            " sample_rate_hz, unit, scale, n_samples, samples, source, incident, batch_id,"
            " received_at) VALUES (%s, 'ecg_ii', now() - interval '2 minutes', %s, 'amb-1',"
            " 250, 'mV', 0.005, %s, %s, 'sim', %s, 'b1', now()) RETURNING id",
            (device, subject, samples.size, samples.tobytes(), incident),
        ).fetchone()
        conn.commit()
    assert row is not None
    return int(row[0])


def test_ecg_pages_follow_the_er_accounts_hospital(database_url: str, tmp_path: Path) -> None:
    hospitals = seed_hospitals(database_url, tmp_path)
    mine = _store_snippet(database_url, STROKE_SUBJECT, STROKE, "monitor-a")
    theirs = _store_snippet(database_url, hospitals.b_subject, B_INCIDENT, "monitor-b")
    home = _store_snippet(database_url, "phome", None, "patch-home")
    with api_client(database_url, tmp_path) as client:
        client.headers["Accept-Language"] = "en-GB,en;q=0.8"
        csrf = password_log_in(client, ER_A, "/ecg")
        queue = client.get("/ecg").text
        assert f'href="/ecg/{mine}"' in queue
        assert f'href="/ecg/{theirs}"' not in queue and f'href="/ecg/{home}"' not in queue
        assert client.get(f"/ecg/{mine}").status_code == 200
        for other in (theirs, home):
            refused = client.get(f"/ecg/{other}")
            assert refused.status_code == 403 and "You may not see this person" in refused.text
        report = {"rhythm": "sinus", "note": "", "csrf": csrf}
        assert client.post(f"/ecg/{theirs}/report", data=report).status_code == 403
        filed = client.post(f"/ecg/{mine}/report", data=report, follow_redirects=False)
        assert filed.status_code == 303, filed.text
        client.get("/logout")

        er_log_in(client, "er", "er-dispatch", "/ecg")  # no hospital: every snippet
        queue = client.get("/ecg").text
        assert f'href="/ecg/{theirs}"' in queue and f'href="/ecg/{home}"' in queue
    denied = _denials(database_url, f"er:{ER_A}")
    assert [(a, r, d["subject"], d["reason"]) for a, r, d in denied] == [
        ("read_denied", f"web/ecg/{theirs}", hospitals.b_subject, "not permitted"),
        ("read_denied", f"web/ecg/{home}", "phome", "not permitted"),
        ("write_denied", f"ecg/{theirs}", hospitals.b_subject, "not permitted"),
    ]
    with psycopg.connect(database_url) as conn:
        reports = conn.execute("SELECT waveform_id, reader FROM ecg_reports").fetchall()
    assert reports == [(mine, f"er:{ER_A}")]
