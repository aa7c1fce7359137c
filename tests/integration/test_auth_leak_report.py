"""The leak rules see what the login and the pages write: failed-login bursts through the
token endpoint and repeated CSV exports through the web page raise alerts in
``build_report`` on a real database."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import psycopg
from test_api_support import ALPHA, alpha_spo2, api_client, write_readings
from test_auth_support import PASSWORD, add_user, login

from ingest_service.security_report import LeakRuleSettings, build_report


def test_report_raises_login_bursts_and_bulk_exports(database_url: str, tmp_path: Path) -> None:
    write_readings(database_url, alpha_spo2())
    add_user(database_url, "u-alpha", "patient", subject=ALPHA)
    add_user(database_url, "dr-li", "doctor")
    with api_client(database_url, tmp_path, api_token_ttl_s=900) as client:
        for _ in range(4):
            assert login(client, "dr-li", "wrong password!").status_code == 400
        page = client.post("/login", data={"username": "u-alpha", "password": PASSWORD})
        assert page.status_code == 200
        for _ in range(3):
            export = client.get("/me/export.csv")
            assert export.status_code == 200 and export.text.startswith("time,")
    rules = LeakRuleSettings(login_threshold=4, export_threshold=3)
    with psycopg.connect(database_url) as conn:
        report = build_report(conn, now=datetime.now(UTC), rules=rules)
    kinds = {(alert.kind, alert.count) for alert in report.alerts}
    assert ("bulk_export", 3) in kinds
    # the 4 failures both for the account and from the test client's address
    assert [a.count for a in report.alerts if a.kind == "login_failure_burst"] == [4, 4]
    assert PASSWORD not in str(report.as_dict())
