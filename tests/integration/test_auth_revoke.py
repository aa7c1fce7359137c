"""Token revocation and disabled accounts against a real database: a revoked token gets 401
on every /api/v1 route; who may revoke what; disabling ends live tokens; logout revokes."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from test_api_support import ALPHA, api_client, audit_rows, signing_key
from test_auth_support import PASSWORD, add_user, auth, password_token, set_disabled

from ingest_service.api import API_PREFIX, create_app, decode_token, mint_token
from ingest_service.api.routers.auth import PUBLIC_API_PATHS
from ingest_service.users import REVOCATION_CACHE_S

_SPEC = create_app().openapi()
#: Every /api/v1 operation that needs a bearer token (all but the login itself).
PROTECTED = sorted(
    (method.upper(), path)
    for path, operations in _SPEC["paths"].items()
    if path.startswith(API_PREFIX + "/") and path not in PUBLIC_API_PATHS
    for method in operations
)


def _concrete(path: str) -> str:
    """A path with each ``{param}`` filled with a plausible value."""
    for name, value in {"{subject}": ALPHA, "{alert_id}": "1"}.items():
        path = path.replace(name, value)
    while "{" in path:
        start, end = path.index("{"), path.index("}")
        path = path[:start] + "x1" + path[end + 1 :]
    return path


def _revoke(client: TestClient, bearer_token: str, **body: str) -> dict[str, object]:
    response = client.post(
        f"{API_PREFIX}/auth/revoke", headers=auth(bearer_token), json=body or None
    )
    assert response.status_code == 200, response.text
    result: dict[str, object] = response.json()
    return result


def test_a_revoked_token_is_refused_on_every_route(database_url: str, tmp_path: Path) -> None:
    add_user(database_url, "ops", "admin")
    with api_client(database_url, tmp_path) as client:
        token = password_token(client, "ops")
        assert client.get(f"{API_PREFIX}/audit", headers=auth(token)).status_code == 200
        jti = decode_token(signing_key(client), token).token_id
        assert _revoke(client, token) == {"revoked": jti, "already_revoked": False}  # log out
        for method, path in PROTECTED:
            response = client.request(method, _concrete(path), headers=auth(token))
            assert response.status_code == 401, (method, path, response.text)
            assert response.headers["www-authenticate"].startswith("Bearer")
        fresh = password_token(client, "ops")  # the account itself is fine
        assert client.get(f"{API_PREFIX}/audit", headers=auth(fresh)).status_code == 200
    revoked = [r for r in audit_rows(database_url) if r[1] == "revoke"]
    assert [(r[0], r[3]["revoked"], r[3]["owner"]) for r in revoked] == [
        ("admin:ops", jti, "admin:ops")
    ]


def test_who_may_revoke_what(database_url: str, tmp_path: Path) -> None:
    add_user(database_url, "ops", "admin")
    add_user(database_url, "dr-li", "doctor", contracted=[ALPHA])
    add_user(database_url, "dr-wang", "doctor")
    with api_client(database_url, tmp_path) as client:
        li_phone, li_desk = password_token(client, "dr-li"), password_token(client, "dr-li")
        wang = password_token(client, "dr-wang")
        # A user revokes another token of their own (the lost phone) ...
        assert _revoke(client, li_desk, token=li_phone, reason="phone lost")["revoked"]
        assert client.get(f"{API_PREFIX}/gateways", headers=auth(li_phone)).status_code == 401
        assert client.get(f"{API_PREFIX}/gateways", headers=auth(li_desk)).status_code == 200
        # ... but not someone else's, and not by id.
        other = client.post(
            f"{API_PREFIX}/auth/revoke", headers=auth(wang), json={"token": li_desk}
        )
        assert other.status_code == 403
        jti = decode_token(signing_key(client), li_desk).token_id
        assert jti is not None
        by_id = client.post(f"{API_PREFIX}/auth/revoke", headers=auth(wang), json={"jti": jti})
        assert by_id.status_code == 403
        assert client.get(f"{API_PREFIX}/gateways", headers=auth(li_desk)).status_code == 200
        # An admin revokes any token by its id (as found in the audit log).
        admin = password_token(client, "ops")
        assert _revoke(client, admin, jti=jti, reason="suspicious reads") == {
            "revoked": jti,
            "already_revoked": False,
        }
        assert _revoke(client, admin, jti=jti)["already_revoked"] is True
        assert client.get(f"{API_PREFIX}/gateways", headers=auth(li_desk)).status_code == 401
        # An expired or forged token needs nothing (RFC 7009 §2.2).
        assert _revoke(client, admin, token="not-a-token") == {
            "revoked": None,
            "already_revoked": False,
        }
    denied = [r for r in audit_rows(database_url) if r[1] == "revoke_denied"]
    assert [r[0] for r in denied] == ["doctor:dr-wang", "doctor:dr-wang"]


def test_disabling_an_account_ends_its_live_tokens(database_url: str, tmp_path: Path) -> None:
    add_user(database_url, "dr-li", "doctor", contracted=[ALPHA])
    with api_client(database_url, tmp_path) as client:
        token = password_token(client, "dr-li")
        minted = mint_token(  # an operator-minted token for the same user is refused as well
            signing_key(client), user="dr-li", role="doctor", now=datetime.now(UTC)
        )
        assert client.get(f"{API_PREFIX}/gateways", headers=auth(token)).status_code == 200
        set_disabled(database_url, "dr-li")  # from outside the API (the CLI does this)
        deadline = time.monotonic() + REVOCATION_CACHE_S + 3
        while client.get(f"{API_PREFIX}/gateways", headers=auth(token)).status_code == 200:
            assert time.monotonic() < deadline, "the disabled user's token still works"
            time.sleep(0.2)
        assert client.get(f"{API_PREFIX}/gateways", headers=auth(minted)).status_code == 401


def test_logout_revokes_the_cookie_token(database_url: str, tmp_path: Path) -> None:
    add_user(database_url, "u-alpha", "patient", subject=ALPHA)
    with api_client(database_url, tmp_path) as client:
        page = client.post(
            "/login", data={"username": "u-alpha", "password": PASSWORD}, follow_redirects=False
        )
        assert page.status_code == 303
        token = client.cookies["vs_token"]
        assert client.get(f"{API_PREFIX}/subjects", headers=auth(token)).status_code == 200
        assert client.get("/logout", follow_redirects=False).status_code == 303
        assert client.get(f"{API_PREFIX}/subjects", headers=auth(token)).status_code == 401
        # and pasting it back into the login form does not bring it back
        again = client.get("/login", params={"token": token}, follow_redirects=False)
        assert again.status_code == 401
    assert "logout" in {r[1] for r in audit_rows(database_url)}


@pytest.mark.parametrize("body", [{"token": "a", "jti": "b"}, {"jti": "no spaces allowed"}])
def test_revoke_rejects_bad_requests(
    database_url: str, tmp_path: Path, body: dict[str, str]
) -> None:
    add_user(database_url, "ops", "admin")
    with api_client(database_url, tmp_path) as client:
        token = password_token(client, "ops")
        response = client.post(f"{API_PREFIX}/auth/revoke", headers=auth(token), json=body)
        assert response.status_code == 422
