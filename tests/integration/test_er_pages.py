"""The ER board pages with the TestClient on a real database: the board and the incident page
render what the handoff tables hold, only for ``er``/``admin`` (denials audited), and the
team's acknowledgement by an htmx POST writes the state and one audit row."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from test_api_support import api_client, audit_rows
from test_incident_support import STROKE, STROKE_SUBJECT, TRAUMA, er_log_in, seed_incidents
from test_web_support import token

from ingest_service.web.er import age_text, staleness


def test_board_lists_incoming_ambulances_with_teams_eta_and_last_data(
    database_url: str, tmp_path: Path
) -> None:
    seed_incidents(database_url, datetime.now(UTC), last_data_age_s=45)
    with api_client(database_url, tmp_path) as client:
        er_log_in(client, "er", "er-nurse")
        page = client.get("/er")
        assert page.status_code == 200, page.text
        html = page.text
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert html.index(f'id="incident-{STROKE}"') < html.index(f'id="incident-{TRAUMA}"')
        row = html[html.index(f'id="incident-{STROKE}"') : html.index(f'id="incident-{TRAUMA}"')]
        assert "Sudden left-sided weakness" in row
        assert "Stroke team: not acknowledged" in row
        assert "Sepsis team: not sent" in row
        assert "in 9 min" in row or "in 8 min" in row
        assert 'class="last-data stale-amber"' in row  # 45 s without data
        assert "Trauma team: acknowledged" in html
        assert 'data-live-board="/er/events"' in html
        assert client.get("/er/rows").status_code == 200
    board = [r for r in audit_rows(database_url) if r[2] == "web/er/board"]
    assert board[0][0] == "er:er-nurse" and board[0][3]["incidents"] == [STROKE, TRAUMA]


def test_incident_page_shows_prealerts_timeline_atmist_vitals_and_charts(
    database_url: str, tmp_path: Path
) -> None:
    seed_incidents(database_url, datetime.now(UTC))
    with api_client(database_url, tmp_path) as client:
        er_log_in(client, "admin", "ops")
        page = client.get(f"/er/incidents/{STROKE}")
        assert page.status_code == 200, page.text
        html = page.text
        assert STROKE_SUBJECT in html and "unidentified, temporary id" in html
        assert "Stroke team" in html and "Acknowledge for the stroke team" in html
        assert "Not sent to the ER: no notification channel was configured." in html
        assert "Medical: suspected stroke" in html  # ATMIST
        assert "Stroke team and CT on arrival" in html  # SBAR
        assert 'id="last-data"' in html
        assert re.search(r"last data 2\d s ago", html)  # the newest reading is 20 s old
        marker = '<script type="application/json" id="chart-config">'
        config = json.loads(html.split(marker)[1].split("</script>")[0])
        charts = {c["id"]: c for c in config["charts"]}
        assert len(charts["heart_rate"]["data"][0]) > 50
        assert charts["bp"]["metrics"] == ["bp_systolic", "bp_diastolic"]
        assert 'id="chart-heart_rate"' in html and 'id="chart-etco2"' not in html  # no EtCO2
        assert "FHIR Bundle" not in html  # not handed over yet

        trauma = client.get(f"/er/incidents/{TRAUMA}").text
        assert f'href="/er/incidents/{TRAUMA}/bundle.json"' in trauma
        bundle = client.get(f"/er/incidents/{TRAUMA}/bundle.json")
        assert bundle.status_code == 200 and bundle.json()["resourceType"] == "Bundle"
        assert client.get(f"/er/incidents/{STROKE}/bundle.json").status_code == 404
        assert client.get("/er/incidents/nope").status_code == 404
        fragment = client.get(f"/er/incidents/{STROKE}/activations")
        assert fragment.status_code == 200 and 'id="incident-live-part"' in fragment.text
    resources = {r[2] for r in audit_rows(database_url) if r[1] == "read"}
    assert {f"web/er/incident/{STROKE}", f"web/er/incident/{TRAUMA}/bundle"} <= resources


def test_htmx_acknowledge_writes_the_state_and_an_audit_row(
    database_url: str, tmp_path: Path
) -> None:
    seeded = seed_incidents(database_url, datetime.now(UTC))
    url = f"/er/incidents/{STROKE}/activations/{seeded.stroke_activation}/ack"
    with api_client(database_url, tmp_path) as client:
        csrf = er_log_in(client, "er", "stroke-lead")
        refused = client.post(url, data={"note": "x"}, headers={"HX-Request": "true"})
        assert refused.status_code == 403  # no CSRF token
        answer = client.post(
            url,
            data={"note": "CT 2 ready"},
            headers={"HX-Request": "true", "X-CSRF-Token": csrf},
        )
        assert answer.status_code == 200, answer.text
        assert f'id="activation-{seeded.stroke_activation}"' in answer.text
        assert "Acknowledged</strong> by er:stroke-lead" in answer.text
        assert "pre-alert acknowledged" in answer.headers["HX-Trigger"]
        again = client.post(url, data={"csrf": csrf}, follow_redirects=False)  # plain form
        assert again.status_code == 303
        assert again.headers["location"] == f"/er/incidents/{STROKE}"
        unsent = f"/er/incidents/{STROKE}/activations/{seeded.unsent_activation}/ack"
        assert client.post(unsent, headers={"X-CSRF-Token": csrf}).status_code == 409
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT acknowledged_by FROM pathway_notifications WHERE activation_id = %s",
            (seeded.stroke_activation,),
        ).fetchone()
    assert row == ("er:stroke-lead",)
    acks = [r for r in audit_rows(database_url) if r[1] == "activation_acknowledged"]
    assert len(acks) == 1
    assert acks[0][0] == "er:stroke-lead"
    assert acks[0][3]["note"] == "CT 2 ready" and acks[0][3]["via"] == "web"


def test_other_roles_get_403_pages_with_audited_denials(database_url: str, tmp_path: Path) -> None:
    seeded = seed_incidents(database_url, datetime.now(UTC))
    with api_client(database_url, tmp_path) as client:
        assert client.get("/er").status_code == 401
        for role, subject in (("doctor", None), ("patient", STROKE_SUBJECT)):
            bearer = {"Authorization": f"Bearer {token(client, role, 'someone', subject)}"}
            assert client.get("/er", headers=bearer).status_code == 403
            assert client.get(f"/er/incidents/{STROKE}", headers=bearer).status_code == 403
            assert client.get("/er/events", headers=bearer).status_code == 403
            url = f"/er/incidents/{STROKE}/activations/{seeded.stroke_activation}/ack"
            assert client.post(url, headers=bearer).status_code == 403
    denied = {(r[0], r[1]) for r in audit_rows(database_url)}
    assert ("doctor:someone", "read_denied") in denied
    assert ("doctor:someone", "write_denied") in denied
    assert ("patient:someone", "read_denied") in denied


def test_dead_zone_indicator_thresholds() -> None:
    assert staleness(None) == "none"
    assert staleness(29.9) == "fresh"
    assert staleness(30) == "amber"
    assert staleness(119) == "amber"
    assert staleness(120) == "red"
    assert age_text(None) == "no data yet"
    assert age_text(12.7) == "last data 12 s ago"
    assert age_text(600) == "last data 10 min ago"
    assert age_text(3 * 3600) == "last data 3 h ago"


def test_incident_page_draws_the_latest_ecg_snippet_on_paper(
    database_url: str, tmp_path: Path
) -> None:
    """Issue 9: the ER board shows the ambulance's latest ECG (SYNTHETIC samples here)."""
    import numpy as np

    seed_incidents(database_url, datetime.now(UTC))
    synthetic = (np.sin(np.arange(2500) / 250 * 2 * np.pi) * 100).astype("<i2")
    with psycopg.connect(database_url) as conn:
        for minutes_ago, device in ((6, "old-monitor"), (2, "monitor-7")):
            conn.execute(
                "INSERT INTO waveforms (device, channel, start_time, subject, gateway,"
                " sample_rate_hz, unit, scale, n_samples, samples, source, incident, batch_id,"
                " received_at) VALUES (%s, 'ecg_ii', now() - make_interval(mins => %s), %s,"
                " 'amb-1', 250, 'mV', 0.005, %s, %s, 'sim', %s, 'b1', now())",
                (device, minutes_ago, STROKE_SUBJECT, synthetic.size, synthetic.tobytes(), STROKE),
            )
        newest = conn.execute("SELECT id FROM waveforms WHERE device = 'monitor-7'").fetchone()
        conn.commit()
    assert newest is not None
    with api_client(database_url, tmp_path) as client:
        er_log_in(client, "admin", "ops")
        html = client.get(f"/er/incidents/{STROKE}").text
    assert "Latest ECG" in html and 'id="ecg-paper"' in html
    assert f'href="/ecg/{newest[0]}"' in html  # the newest snippet, linked for a report
    assert 'width="260.0mm"' in html  # 10 s at 25 mm/s = 250 mm, plus the calibration margin
