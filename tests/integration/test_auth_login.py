"""OAuth2 login against a real database: password and client-credentials grants, wrong
secrets, throttling, disabled accounts, role scoping of password-login tokens, the web form
(issue 10 item 3)."""

from __future__ import annotations

import base64
from pathlib import Path

from test_api_support import ALPHA, BETA, alpha_spo2, api_client, audit_rows, write_readings
from test_auth_support import (
    PASSWORD,
    SECRET,
    add_client,
    add_user,
    auth,
    login,
    password_token,
    set_disabled,
)

from ingest_service.api import decode_token
from ingest_service.users import ADDRESS_FAILURE_LIMIT, USERNAME_FAILURE_LIMIT


def test_password_grant_mints_a_short_lived_token_with_the_users_claims(
    database_url: str, tmp_path: Path
) -> None:
    add_user(database_url, "dr-li", "doctor", contracted=[ALPHA])
    with api_client(database_url, tmp_path) as client:
        response = login(client, "dr-li", PASSWORD)
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        body = response.json()
        assert body["token_type"] == "bearer" and body["expires_in"] == 900
        who = decode_token(client.app.state.signing_key, body["access_token"])  # type: ignore[attr-defined]
    assert (who.user, who.role, who.subjects) == ("dr-li", "doctor", (ALPHA,))
    logins = [r for r in audit_rows(database_url) if r[1] == "login"]
    assert [(r[0], r[2]) for r in logins] == [("doctor:dr-li", "auth/token")]
    assert logins[0][3]["token"] == who.token_id and logins[0][3]["grant_type"] == "password"


def test_password_login_tokens_keep_patient_and_doctor_scoping(
    database_url: str, tmp_path: Path
) -> None:
    write_readings(database_url, alpha_spo2())
    add_user(database_url, "u-alpha", "patient", subject=ALPHA)
    add_user(database_url, "dr-li", "doctor", contracted=[ALPHA])
    add_user(database_url, "dr-new", "doctor")  # no contracts yet: sees nobody, not everybody
    with api_client(database_url, tmp_path) as client:
        patient = auth(password_token(client, "u-alpha"))
        assert client.get(f"/api/v1/subjects/{ALPHA}/latest", headers=patient).status_code == 200
        assert client.get(f"/api/v1/subjects/{BETA}/latest", headers=patient).status_code == 403
        assert client.get("/api/v1/audit", headers=patient).status_code == 403
        doctor = auth(password_token(client, "dr-li"))
        assert client.get(f"/api/v1/subjects/{ALPHA}/readings", headers=doctor).status_code == 200
        assert client.get(f"/api/v1/subjects/{BETA}/readings", headers=doctor).status_code == 403
        newcomer = auth(password_token(client, "dr-new"))
        assert client.get(f"/api/v1/subjects/{ALPHA}/latest", headers=newcomer).status_code == 403
        assert client.get("/api/v1/subjects", headers=newcomer).json()["subjects"] == []
    denied = {(r[0], r[2]) for r in audit_rows(database_url) if r[1] == "read_denied"}
    assert ("patient:u-alpha", f"subject/{BETA}/latest") in denied
    assert ("doctor:dr-li", f"subject/{BETA}/readings") in denied


def test_client_credentials_with_basic_or_form_authentication(
    database_url: str, tmp_path: Path
) -> None:
    add_client(
        database_url, "regional-platform", scopes=["readings:read", "alerts:read", "dead-letters"]
    )
    basic = base64.b64encode(f"regional-platform:{SECRET}".encode()).decode()
    with api_client(database_url, tmp_path) as client:
        by_header = client.post(
            "/api/v1/auth/token",
            data={"grant_type": "client_credentials", "scope": "readings:read"},
            headers={"Authorization": f"Basic {basic}"},
        )
        assert by_header.status_code == 200, by_header.text
        assert by_header.json()["scope"] == "readings:read"
        by_form = client.post(
            "/api/v1/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "regional-platform",
                "client_secret": SECRET,
            },
        )
        assert by_form.status_code == 200
        assert by_form.json()["scope"] == "alerts:read dead-letters:read readings:read"
        token = by_form.json()["access_token"]
        assert client.get("/api/v1/dead-letters", headers=auth(token)).status_code == 200
        too_much = client.post(
            "/api/v1/auth/token",
            data={"grant_type": "client_credentials", "scope": "audit:read"},
            headers={"Authorization": f"Basic {basic}"},
        )
        assert too_much.status_code == 400 and too_much.json()["error"] == "invalid_scope"
        wrong = client.post(
            "/api/v1/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "regional-platform",
                "client_secret": "guess",
            },
        )
        assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
        wrong_basic = client.post(
            "/api/v1/auth/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": "Basic " + base64.b64encode(b"regional-platform:x").decode()},
        )
        assert wrong_basic.status_code == 401
        assert wrong_basic.headers["www-authenticate"].startswith("Basic")
    rows = audit_rows(database_url)
    assert [r[0] for r in rows if r[1] == "login"] == ["service:regional-platform"] * 2
    failures = [r for r in rows if r[1] == "login_failed"]
    assert [r[3]["reason"] for r in failures] == ["bad_secret", "bad_secret"]


def test_wrong_password_unknown_user_and_bad_requests(database_url: str, tmp_path: Path) -> None:
    add_user(database_url, "dr-li", "doctor")
    typed_id = "11010119900307711X"  # someone types their ID number as the username
    with api_client(database_url, tmp_path) as client:
        wrong = login(client, "dr-li", "not the password")
        assert wrong.status_code == 400
        assert wrong.json() == {
            "error": "invalid_grant",
            "error_description": "wrong username or password",
        }
        unknown = login(client, typed_id, PASSWORD)
        assert unknown.status_code == 400 and unknown.json() == wrong.json()  # no enumeration
        assert client.post("/api/v1/auth/token", json={"grant_type": "password"}).status_code == 400
        odd = client.post("/api/v1/auth/token", data={"grant_type": "implicit"})
        assert odd.json()["error"] == "unsupported_grant_type"
        assert client.post("/api/v1/auth/token", data={}).json()["error"] == "invalid_request"
    failures = [r for r in audit_rows(database_url) if r[1] == "login_failed"]
    assert [(r[0], r[3]["reason"]) for r in failures] == [
        ("doctor:dr-li", "bad_password"),
        ("anonymous", "unknown_user"),
    ]
    assert all(r[3]["from"] == "testclient" for r in failures)
    assert typed_id not in str(audit_rows(database_url))  # an unknown name is not recorded


def test_failed_logins_are_throttled_per_username(database_url: str, tmp_path: Path) -> None:
    add_user(database_url, "dr-li", "doctor")
    add_user(database_url, "dr-wang", "doctor")
    with api_client(database_url, tmp_path) as client:
        for _ in range(USERNAME_FAILURE_LIMIT):
            assert login(client, "dr-li", "wrong password!").status_code == 400
        locked = login(client, "dr-li", PASSWORD)  # even the right password now
        assert locked.status_code == 429
        assert locked.json()["error"] == "too_many_attempts"
        assert int(locked.headers["retry-after"]) > 0
        assert login(client, "dr-wang", PASSWORD).status_code == 200  # others still log in
    failures = [r for r in audit_rows(database_url) if r[1] == "login_failed"]
    assert len(failures) == USERNAME_FAILURE_LIMIT  # the refused attempts are not re-audited
    assert [r[3]["locked"] for r in failures] == [False] * (USERNAME_FAILURE_LIMIT - 1) + [True]


def test_failed_logins_are_throttled_per_address(database_url: str, tmp_path: Path) -> None:
    add_user(database_url, "dr-li", "doctor")
    with api_client(database_url, tmp_path) as client:
        for index in range(ADDRESS_FAILURE_LIMIT):  # password spraying over many names
            assert login(client, f"guess-{index}", "wrong password!").status_code == 400
        assert login(client, "dr-li", PASSWORD).status_code == 429


def test_a_disabled_user_cannot_log_in(database_url: str, tmp_path: Path) -> None:
    add_user(database_url, "er-zhao", "er")
    set_disabled(database_url, "er-zhao")
    with api_client(database_url, tmp_path) as client:
        refused = login(client, "er-zhao", PASSWORD)
        assert refused.status_code == 400
        assert refused.json()["error_description"] == "this account is disabled"
        assert login(client, "er-zhao", "wrong password!").json()["error_description"] == (
            "wrong username or password"  # only the password's owner learns it is disabled
        )
    set_disabled(database_url, "er-zhao", disabled=False)
    with api_client(database_url, tmp_path) as client:
        assert login(client, "er-zhao", PASSWORD).status_code == 200


def test_the_web_form_logs_in_with_a_password(database_url: str, tmp_path: Path) -> None:
    add_user(database_url, "u-alpha", "patient", subject=ALPHA)
    with api_client(database_url, tmp_path) as client:
        form = client.get("/login")
        assert 'name="username"' in form.text and 'name="password"' in form.text
        assert 'name="token"' in form.text  # the pasted-token path stays
        wrong = client.post("/login", data={"username": "u-alpha", "password": "nope nope nope"})
        assert wrong.status_code == 401 and 'name="password"' in wrong.text
        ok = client.post(
            "/login",
            data={"username": "u-alpha", "password": PASSWORD, "next": "/me"},
            follow_redirects=False,
        )
        assert ok.status_code == 303 and ok.headers["location"] == "/me"
        assert "vs_token=" in ok.headers["set-cookie"]
        assert "httponly" in ok.headers["set-cookie"].lower()
        assert client.get("/me").status_code == 200
    rows = audit_rows(database_url)
    assert ("anonymous", "login_failed") not in {(r[0], r[1]) for r in rows}
    assert ("patient:u-alpha", "login_failed", "auth/web") in {(r[0], r[1], r[2]) for r in rows}
    assert ("patient:u-alpha", "login", "auth/web") in {(r[0], r[1], r[2]) for r in rows}
