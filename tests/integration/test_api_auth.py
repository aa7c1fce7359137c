"""Authentication on every /api/v1 route, and the role/subject policy (issue 10 item 3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_api_support import (
    ALPHA,
    BETA,
    alpha_spo2,
    api_client,
    audit_rows,
    bearer,
    signing_key,
    write_readings,
)

from ingest_service.api import API_PREFIX, create_app, mint_token
from ingest_service.api.routers.auth import PUBLIC_API_PATHS

#: Every /api/v1 operation of the real app, read from its OpenAPI document (the public view
#: of the route table; FastAPI's own route objects are internal and change between
#: versions): a new route is covered without editing this file.
_SPEC = create_app().openapi()
API_ROUTES = sorted(
    (method.upper(), path)
    for path, operations in _SPEC["paths"].items()
    if path.startswith(API_PREFIX + "/") and path not in PUBLIC_API_PATHS  # the login itself
    for method in operations
)


def _url(path: str) -> str:
    return path.replace("{subject}", ALPHA)


def test_the_route_table_has_the_resources() -> None:
    paths = {path for _, path in API_ROUTES}
    assert {
        "/api/v1/subjects",
        "/api/v1/subjects/{subject}/readings",
        "/api/v1/subjects/{subject}/latest",
        "/api/v1/gateways",
        "/api/v1/dead-letters",
        "/api/v1/alerts",
        "/api/v1/audit",
    } <= paths
    for method, path in API_ROUTES:  # and the spec tells clients they need a bearer token
        assert _SPEC["paths"][path][method.lower()]["security"] == [{"HTTPBearer": []}]


@pytest.mark.parametrize(("method", "path"), API_ROUTES)
def test_every_api_route_refuses_missing_bad_and_expired_tokens(
    database_url: str, tmp_path: Path, method: str, path: str
) -> None:
    with api_client(database_url, tmp_path) as client:
        key = signing_key(client)
        expired = mint_token(
            key, user="dr-li", role="admin", now=datetime.now(UTC) - timedelta(hours=1), ttl_s=60
        )
        forged = mint_token(b"f" * 64, user="dr-li", role="admin", now=datetime.now(UTC))
        cases: list[dict[str, str]] = [
            {},
            {"Authorization": "Bearer not-a-token"},
            {"Authorization": f"Bearer {expired}"},
            {"Authorization": f"Bearer {forged}"},
            {"Authorization": "Basic YWRtaW46YWRtaW4="},
        ]
        for headers in cases:
            response = client.request(method, _url(path), headers=headers)
            assert response.status_code == 401, (headers, response.text)
            assert response.headers["www-authenticate"].startswith("Bearer")
        ok = client.request(method, _url(path), headers=bearer(client, "admin", "ops"))
        if method == "GET" and "{" not in _url(path):
            assert ok.status_code == 200, ok.text
        else:  # a write, or an id nobody has: the token is accepted, the action may not be
            assert ok.status_code != 401, ok.text
    # Refused requests read nothing, so they leave no "read" rows.
    assert all(
        action != "read" or actor == "admin:ops" for actor, action, _, _ in audit_rows(database_url)
    )


def test_a_patient_reads_only_their_own_subject(database_url: str, tmp_path: Path) -> None:
    write_readings(database_url, alpha_spo2())
    with api_client(database_url, tmp_path) as client:
        me = bearer(client, "patient", "u-alpha", subject=ALPHA)
        assert client.get(f"/api/v1/subjects/{ALPHA}/latest", headers=me).status_code == 200
        for path in ("latest", "readings"):
            denied = client.get(f"/api/v1/subjects/{BETA}/{path}", headers=me)
            assert denied.status_code == 403
        assert client.get(f"/api/v1/alerts?subject={BETA}", headers=me).status_code == 403
        listed = client.get("/api/v1/subjects", headers=me).json()
        assert [s["subject"] for s in listed["subjects"]] == [ALPHA]
        for path in ("/api/v1/gateways", "/api/v1/dead-letters", "/api/v1/audit"):
            assert client.get(path, headers=me).status_code == 403
    denials = [
        (actor, res) for actor, act, res, _ in audit_rows(database_url) if act == "read_denied"
    ]
    assert ("patient:u-alpha", f"subject/{BETA}/latest") in denials
    assert ("patient:u-alpha", f"subject/{BETA}/readings") in denials


def test_a_doctor_reads_only_contracted_subjects(database_url: str, tmp_path: Path) -> None:
    write_readings(database_url, alpha_spo2())
    with api_client(database_url, tmp_path) as client:
        li = bearer(client, "doctor", "dr-li", subjects=[ALPHA])
        wang = bearer(client, "doctor", "dr-wang", subjects=[BETA])
        assert client.get(f"/api/v1/subjects/{ALPHA}/readings", headers=li).status_code == 200
        response = client.get(f"/api/v1/subjects/{ALPHA}/readings", headers=wang)
        assert response.status_code == 403
        assert client.get("/api/v1/gateways", headers=wang).status_code == 200
        assert client.get("/api/v1/audit", headers=li).status_code == 403
        assert client.get("/api/v1/dead-letters", headers=li).status_code == 403
        assert client.get("/api/v1/subjects", headers=wang).json()["subjects"] == []
    rows = audit_rows(database_url)
    denied = [r for r in rows if r[0] == "doctor:dr-wang" and r[1] == "read_denied"]
    assert denied and denied[0][2] == f"subject/{ALPHA}/readings"
    assert denied[0][3]["subject"] == ALPHA and denied[0][3]["role"] == "doctor"


def test_openapi_is_served_without_a_token(database_url: str, tmp_path: Path) -> None:
    with api_client(database_url, tmp_path) as client:
        assert client.get("/docs").status_code == 200
        spec = client.get("/openapi.json").json()
    assert "/api/v1/subjects/{subject}/readings" in spec["paths"]
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
