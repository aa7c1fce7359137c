"""The web pages against a real PostgreSQL: login, role rules, the panel, the inbox's
acknowledge/resolve (state + audit), the per-patient page, rule edits, the self-view, export."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from test_api_support import api_client, audit_rows
from test_web_support import DELTA, GAMMA, OTHER, log_in, seed, token

HTMX = {"HX-Request": "true"}


def _state(database_url: str, alert_id: int) -> str:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT state FROM alerts WHERE id = %s", (alert_id,)).fetchone()
    assert row is not None
    return str(row[0])


def test_pages_need_a_valid_token_and_the_right_role(database_url: str, tmp_path: Path) -> None:
    seed(database_url, datetime.now(UTC))
    with api_client(database_url, tmp_path) as client:
        for path in ("/doctor", "/doctor/alerts", f"/doctor/subjects/{GAMMA}", "/me"):
            anonymous = client.get(path)
            assert anonymous.status_code == 401, path
            assert 'action="/login"' in anonymous.text  # the login form, not JSON
            forged = client.get(path, headers={"Authorization": "Bearer nope"})
            assert forged.status_code == 401
        patient = {"Authorization": f"Bearer {token(client, 'patient', 'u1', subject=GAMMA)}"}
        assert client.get("/doctor", headers=patient).status_code == 403
        assert client.get(f"/doctor/subjects/{GAMMA}", headers=patient).status_code == 403
        doctor = {"Authorization": f"Bearer {token(client, 'doctor', 'dr-li')}"}
        assert client.get("/me", headers=doctor).status_code == 403
        assert client.get("/static/htmx.min.js").status_code == 200
        assert client.get("/static/../settings.py").status_code == 404
        bad = client.get("/login", params={"token": "garbage"}, follow_redirects=False)
        assert bad.status_code == 401
    denied = [r for r in audit_rows(database_url) if r[1] == "read_denied"]
    assert {r[0] for r in denied} == {"patient:u1", "doctor:dr-li"}


def test_panel_ranks_by_attention_and_marks_silent_devices(
    database_url: str, tmp_path: Path
) -> None:
    seed(database_url, datetime.now(UTC))
    with api_client(database_url, tmp_path) as client:
        log_in(client, "doctor", "dr-li", subjects=[DELTA, GAMMA])
        page = client.get("/doctor")
    assert page.status_code == 200
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    rows = re.findall(r'<th scope="row"><a href="/doctor/subjects/(\w+)">', page.text)
    assert rows == [GAMMA, DELTA]  # a critical alert first; OTHER is not contracted
    delta_row = page.text[page.text.index(f"/doctor/subjects/{DELTA}") :]
    assert "silent: 3 days ago" in delta_row
    assert "1 critical" in page.text and "1 medium" in page.text
    reads = [r for r in audit_rows(database_url) if r[2] == "web/doctor/panel"]
    assert len(reads) == 2  # the page after logging in, and the one above
    panel = reads[-1]
    assert panel[0] == "doctor:dr-li" and panel[1] == "read"
    assert panel[3]["subjects"] == [GAMMA, DELTA] and panel[3]["role"] == "doctor"


def test_acknowledge_and_resolve_go_through_the_lifecycle_and_are_audited(
    database_url: str, tmp_path: Path
) -> None:
    ids = seed(database_url, datetime.now(UTC))
    crisis, other = ids["crisis"], ids["other"]
    with api_client(database_url, tmp_path) as client:
        csrf = log_in(client, "doctor", "dr-li", subjects=[GAMMA, DELTA])
        inbox = client.get("/doctor/alerts")
        assert inbox.status_code == 200
        assert f'id="alert-{crisis}"' in inbox.text and f'id="alert-{other}"' not in inbox.text
        # Critical before medium in the inbox.
        assert inbox.text.index(f'id="alert-{crisis}"') < inbox.text.index(
            f'id="alert-{ids["mean"]}"'
        )
        url = f"/doctor/alerts/{crisis}/acknowledge"
        no_csrf = client.post(url, data={"note": "x"}, headers=HTMX)
        assert no_csrf.status_code == 403 and _state(database_url, crisis) == "active"

        ack = client.post(
            url, data={"note": "calling the patient"}, headers={**HTMX, "X-CSRF-Token": csrf}
        )
        assert ack.status_code == 200, ack.text
        assert ack.text.startswith(f'<tr id="alert-{crisis}"')
        assert "acknowledged" in ack.text and "calling the patient" in ack.text
        assert json.loads(ack.headers["hx-trigger"]) == {
            "vs-status": f"Alert {crisis} acknowledged."
        }
        assert _state(database_url, crisis) == "acknowledged"
        again = client.post(url, data={"csrf": csrf}, headers=HTMX)  # idempotent
        assert "no change" in again.headers["hx-trigger"]

        resolve = f"/doctor/alerts/{crisis}/resolve"
        bare = client.post(resolve, data={"csrf": csrf, "note": ""}, headers=HTMX)
        assert bare.status_code == 422 and "note is required" in bare.text
        assert _state(database_url, crisis) == "acknowledged"
        # A plain form post (no JavaScript) redirects back to the page it came from.
        done = client.post(
            resolve,
            data={"csrf": csrf, "note": "BP 150/90 on recheck", "next": "https://evil.example"},
            follow_redirects=False,
        )
        assert done.status_code == 303 and done.headers["location"] == "/doctor/alerts"
        assert _state(database_url, crisis) == "resolved"

        foreign = client.post(
            f"/doctor/alerts/{other}/acknowledge", data={"csrf": csrf}, headers=HTMX
        )
        assert foreign.status_code == 403 and _state(database_url, other) == "active"
        missing = client.post("/doctor/alerts/999999/acknowledge", data={"csrf": csrf})
        assert missing.status_code == 404

    rows = [r for r in audit_rows(database_url) if r[2] == f"alert/{crisis}"]
    assert [(actor, action) for actor, action, _, _ in rows] == [
        ("doctor:dr-li", "alert_acknowledged"),
        ("doctor:dr-li", "alert_resolved"),
    ]
    ack_detail, resolve_detail = rows[0][3], rows[1][3]
    assert ack_detail["from_state"] == "active" and ack_detail["to_state"] == "acknowledged"
    assert ack_detail["note"] == "calling the patient" and ack_detail["subject"] == GAMMA
    assert resolve_detail["why"] == "BP 150/90 on recheck"
    (denied,) = [r for r in audit_rows(database_url) if r[2] == f"alert/{other}"]
    assert denied[1] == "write_denied"


def test_patient_page_has_trends_targets_and_is_audited(database_url: str, tmp_path: Path) -> None:
    seed(database_url, datetime.now(UTC))
    with api_client(database_url, tmp_path) as client:
        log_in(client, "doctor", "dr-li", subjects=[GAMMA, DELTA])
        page = client.get(f"/doctor/subjects/{GAMMA}", params={"days": 7})
        month = client.get(f"/doctor/subjects/{GAMMA}", params={"days": 30})
        foreign = client.get(f"/doctor/subjects/{OTHER}")
    assert page.status_code == 200 and month.status_code == 200
    assert foreign.status_code == 403
    config_text = re.search(
        r'<script type="application/json" id="chart-config">(.*?)</script>', page.text, re.S
    )
    assert config_text is not None
    config = json.loads(config_text.group(1))
    charts = {c["id"]: c for c in config["charts"]}
    assert set(charts) == {"bp", "glucose", "weight", "spo2", "heart_rate"}
    bp = charts["bp"]
    assert bp["metrics"] == ["bp_systolic", "bp_diastolic"]
    assert len(bp["data"]) == 3 and 12 <= len(bp["data"][0]) <= 16  # twice daily, 7 days
    assert config["bands"]["bp"]["lines"][0]["value"] == 135.0
    assert 'id="chart-bp"' in page.text and 'id="chart-glucose"' in page.text
    assert "Home BP, 7-day mean" in page.text and "above target" in page.text
    assert "Target &lt; 135/85" in page.text
    reads = [r for r in audit_rows(database_url) if r[2] == f"web/subject/{GAMMA}"]
    assert [r[3]["query"]["days"] for r in reads] == [7, 30]
    assert reads[0][3]["resolution"]["spo2"] == "raw"
    (denied,) = [r for r in audit_rows(database_url) if r[2] == f"web/subject/{OTHER}"]
    assert denied[1] == "read_denied"


def test_rule_settings_need_a_reason_and_are_audited(database_url: str, tmp_path: Path) -> None:
    seed(database_url, datetime.now(UTC))
    url = f"/doctor/subjects/{GAMMA}/rules"
    with api_client(database_url, tmp_path) as client:
        csrf = log_in(client, "doctor", "dr-li", subjects=[GAMMA])
        form = {
            "csrf": csrf,
            "version": "",
            "packs": ["core", "hypertension"],
            "param.home_bp_mean_systolic": "130",
            "param.home_bp_mean_diastolic": "80",
            "disabled": ["bp_low_systolic"],
        }
        no_reason = client.post(url, data=form)
        assert no_reason.status_code == 422 and "reason of at least" in no_reason.text
        bad_value = client.post(
            url, data={**form, "param.home_bp_mean_systolic": "abc", "reason": "diabetic"}
        )
        assert bad_value.status_code == 422 and "not a number" in bad_value.text
        saved = client.post(
            url, data={**form, "reason": "diabetic: 130/80 target"}, follow_redirects=False
        )
        assert saved.status_code == 303, saved.text
        stale = client.post(url, data={**form, "reason": "second edit, stale form"})
        assert stale.status_code == 409
        page = client.get(f"/doctor/subjects/{GAMMA}")
        assert "Target &lt; 130/80" in page.text and "diabetic: 130/80 target" in page.text
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT packs, parameters, disabled_rules, updated_by, reason FROM subject_rules"
        ).fetchone()
    assert row == (
        ["core", "hypertension"],
        {"home_bp_mean_systolic": 130.0, "home_bp_mean_diastolic": 80.0},
        ["bp_low_systolic"],
        "doctor:dr-li",
        "diabetic: 130/80 target",
    )
    (change,) = [r for r in audit_rows(database_url) if r[1] == "rules_changed"]
    assert change[2] == f"subject/{GAMMA}/rules" and change[3]["before"] is None
    assert change[3]["after"]["parameters"]["home_bp_mean_systolic"] == 130.0


def test_patient_sees_own_data_in_their_language_and_exports_it(
    database_url: str, tmp_path: Path
) -> None:
    seed(database_url, datetime.now(UTC))
    with api_client(database_url, tmp_path) as client:
        log_in(client, "patient", "u-gamma", subject=GAMMA)
        english = client.get("/me", params={"lang": "en"})
        assert english.status_code == 200 and '<html lang="en">' in english.text
        assert "Blood pressure" in english.text and "higher than your target" in english.text
        assert "Your doctor has been told." in english.text  # GAMMA's open alerts
        remembered = client.get("/me")  # the cookie keeps English
        assert '<html lang="en">' in remembered.text
        chinese = client.get("/me", params={"lang": "zh"})
        assert '<html lang="zh-CN">' in chinese.text and "血压" in chinese.text
        assert OTHER not in chinese.text
        export = client.get("/me/export.csv")
        assert client.get(f"/doctor/subjects/{OTHER}").status_code == 403
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    with psycopg.connect(database_url) as conn:
        stored = conn.execute("SELECT count(*) FROM readings WHERE subject = %s", (GAMMA,))
        count = stored.fetchone()
    assert count is not None and len(rows) == count[0] > 100
    assert {r["metric"] for r in rows} >= {"bp_systolic", "glucose", "weight", "spo2"}
    actions = [(r[1], r[2]) for r in audit_rows(database_url) if r[0] == "patient:u-gamma"]
    assert ("read", "web/me") in actions and ("read", "web/me/export") in actions
