"""Authorisation beyond roles, against a real database (issue 10 item 3): the ``device`` role,
``er`` accounts scoped to the incidents routed to their hospital, per-resource client scopes,
and the login throttle shared between API processes (migration 13)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from test_api_support import (
    ALPHA,
    alpha_spo2,
    api_client,
    audit_rows,
    bearer,
    signing_key,
    write_readings,
)
from test_auth_support import PASSWORD, SECRET, add_client, add_user, auth, login
from test_incident_support import (
    AMBULANCE,
    STROKE,
    STROKE_SUBJECT,
    TRAUMA,
    seed_incidents,
)

from ingest_service import migrate, schema
from ingest_service.api import API_PREFIX, create_app, mint_token
from ingest_service.api.routers.auth import PUBLIC_API_PATHS
from ingest_service.api.scopes import OPENAPI_KEY, SCOPES
from ingest_service.devices import register
from ingest_service.users import USERNAME_FAILURE_LIMIT
from vitals import GatewayStatus

HOSPITAL_A = "h-ruijin"
HOSPITAL_B = "h-zhongshan"
OTHER_AMBULANCE = "amb-7"


def _denials(database_url: str, actor: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(action, resource, detail) of the actor's refused requests."""
    return [
        (action, resource, detail)
        for who, action, resource, detail in audit_rows(database_url)
        if who == actor and action in {"read_denied", "write_denied"}
    ]


# ------------------------------------------------------------------------------ device


def _status(gateway: str) -> dict[str, Any]:
    status = GatewayStatus(
        gateway=gateway,
        state="online",
        time=datetime.now(UTC),
        queue_depth=3,
        software="edge 1.0",
    )
    return status.model_dump(mode="json")


def test_a_device_token_reads_no_patient_data_and_each_refusal_is_audited(
    database_url: str, tmp_path: Path
) -> None:
    write_readings(database_url, alpha_spo2())
    seed_incidents(database_url, datetime.now(UTC))
    refused = [
        f"/api/v1/subjects/{ALPHA}/readings",
        f"/api/v1/subjects/{ALPHA}/latest",
        "/api/v1/subjects",
        "/api/v1/alerts",
        f"/api/v1/alerts?subject={ALPHA}",
        "/api/v1/incidents",
        f"/api/v1/incidents/{STROKE}",
        f"/api/v1/incidents/{STROKE}/bundle",
        "/api/v1/gateways",
        "/api/v1/dead-letters",
        "/api/v1/audit",
    ]
    with api_client(database_url, tmp_path) as client:
        # Minted by an operator: no scope claim, so the role alone must refuse.
        device = bearer(client, "device", "gw-1-link", gateway="gw-1")
        for url in refused:
            response = client.get(url, headers=device)
            assert response.status_code == 403, (url, response.text)
    denials = _denials(database_url, "device:gw-1-link")
    assert len(denials) == len(refused)
    assert all(action == "read_denied" and d["reason"] == "role" for action, _, d in denials)
    assert (f"subject/{ALPHA}/readings") in {resource for _, resource, _ in denials}
    # Nothing was read: no "read" row of the device at all.
    assert not [
        r for r in audit_rows(database_url) if r[0] == "device:gw-1-link" and r[1] == "read"
    ]


def test_a_device_client_writes_and_reads_its_own_gateway_only(
    database_url: str, tmp_path: Path
) -> None:
    add_client(
        database_url,
        "gw-1-link",
        "device",
        gateway="gw-1",
        scopes=["gateways:read", "gateways:write"],
    )
    with psycopg.connect(database_url) as conn, conn.transaction():
        register(conn, "oxi-a", "gw-1", "cli:ops", datetime.now(UTC))
        register(conn, "oxi-z", "gw-2", "cli:ops", datetime.now(UTC))
    with api_client(database_url, tmp_path) as client:
        granted = client.post(
            "/api/v1/auth/token",
            data={"grant_type": "client_credentials", "client_id": "gw-1-link",
                  "client_secret": SECRET},
        )  # fmt: skip
        assert granted.status_code == 200, granted.text
        device = auth(granted.json()["access_token"])
        written = client.put("/api/v1/gateways/gw-1/status", json=_status("gw-1"), headers=device)
        assert written.status_code == 200, written.text
        assert written.json()["status"]["queue_depth"] == 3
        mine = client.get("/api/v1/gateways/gw-1", headers=device)
        assert mine.status_code == 200, mine.text
        assert mine.json()["status"]["state"] == "online"
        assert [d["device"] for d in mine.json()["devices"]] == ["oxi-a"]
        assert (
            client.put(
                "/api/v1/gateways/gw-2/status", json=_status("gw-2"), headers=device
            ).status_code
            == 403
        )
        assert client.get("/api/v1/gateways/gw-2", headers=device).status_code == 403
        lying = client.put("/api/v1/gateways/gw-1/status", json=_status("gw-2"), headers=device)
        assert lying.status_code == 422  # the body speaks for another gateway
        # Readings: the client has no readings scope, and the device role none either.
        assert client.get(f"/api/v1/subjects/{ALPHA}/latest", headers=device).status_code == 403
        # Other roles do not write a gateway's status: that is the gateway's own word.
        admin = bearer(client, "admin", "ops")
        assert (
            client.put("/api/v1/gateways/gw-1/status", json=_status("gw-1"), headers=admin)
        ).status_code == 403
        assert client.get("/api/v1/gateways/gw-1", headers=admin).status_code == 200
    with psycopg.connect(database_url) as conn:
        stored = conn.execute("SELECT status->>'software' FROM gateways WHERE gateway = 'gw-1'")
        assert stored.fetchone() == ("edge 1.0",)
        assert conn.execute("SELECT count(*) FROM gateways").fetchone() == (1,)
    denials = _denials(database_url, "device:gw-1-link")
    assert [(a, r, d["reason"]) for a, r, d in denials] == [
        ("write_denied", "gateway/gw-2/status", "other gateway"),
        ("read_denied", "gateway/gw-2", "other gateway"),
        ("read_denied", "subjects/{subject}/latest", "scope"),
    ]


# ---------------------------------------------------------------------------- hospitals


def _route(client: Any, gateway: str, hospital: str | None) -> None:
    response = client.put(
        f"/api/v1/gateways/{gateway}/route",
        json={"hospital": hospital, "reason": "dispatch plan"},
        headers=bearer(client, "admin", "ops"),
    )
    assert response.status_code == 200, response.text


def _open(client: Any, headers: dict[str, str], **fields: Any) -> Any:
    return client.post("/api/v1/incidents", json=fields, headers=headers)


def test_an_er_of_one_hospital_sees_only_the_incidents_routed_to_it(
    database_url: str, tmp_path: Path
) -> None:
    with api_client(database_url, tmp_path) as client:
        _route(client, AMBULANCE, HOSPITAL_A)  # before the crew's events arrive
    now = datetime.now(UTC)
    seeded = seed_incidents(database_url, now)  # through the handoff service's record_event
    write_readings(database_url, alpha_spo2())  # a home patient: no incident anywhere
    with api_client(database_url, tmp_path) as client:
        admin = bearer(client, "admin", "ops")
        opened = _open(
            client, admin, gateway=OTHER_AMBULANCE, incident="inc-b", hospital=HOSPITAL_B,
            chief_complaint="Chest pain",
        )  # fmt: skip
        assert opened.status_code == 201, opened.text
        assert opened.json()["hospital"] == HOSPITAL_B
        b_subject = opened.json()["incident"]["subject"]
        er_a = bearer(client, "er", "er-zhao", hospital=HOSPITAL_A)
        er_b = bearer(client, "er", "er-qian", hospital=HOSPITAL_B)
        everywhere = bearer(client, "er", "er-dispatch")  # no hospital: every incident

        listed = client.get("/api/v1/incidents", headers=er_a).json()["incidents"]
        assert {(i["id"], i["hospital"]) for i in listed} == {
            (STROKE, HOSPITAL_A),
            (TRAUMA, HOSPITAL_A),
        }
        assert [
            i["id"] for i in client.get("/api/v1/incidents", headers=er_b).json()["incidents"]
        ] == ["inc-b"]
        assert len(client.get("/api/v1/incidents", headers=everywhere).json()["incidents"]) == 3

        assert client.get(f"/api/v1/incidents/{STROKE}", headers=er_a).status_code == 200
        for url in ("/api/v1/incidents/inc-b", "/api/v1/incidents/inc-b/bundle"):
            assert client.get(url, headers=er_a).status_code == 403
        assert client.get(f"/api/v1/incidents/{STROKE}", headers=er_b).status_code == 403
        ack = f"/api/v1/incidents/{STROKE}/activations/{seeded.stroke_activation}/ack"
        assert client.post(ack, headers=er_b).status_code == 403
        assert (
            client.patch(
                f"/api/v1/incidents/{STROKE}", json={"chief_complaint": "x"}, headers=er_b
            ).status_code
            == 403
        )
        assert client.post(f"/api/v1/incidents/{STROKE}/handoff", headers=er_b).status_code == 403
        assert client.post(ack, headers=er_a).status_code == 200

        # Patient data follows the incidents: the ER reads its incoming patients only.
        own = client.get(f"/api/v1/subjects/{STROKE_SUBJECT}/latest", headers=er_a)
        assert own.status_code == 200 and own.json()["latest"]
        for subject in (b_subject, ALPHA):
            assert client.get(f"/api/v1/subjects/{subject}/latest", headers=er_a).status_code == 403
        subjects = client.get("/api/v1/subjects", headers=er_a).json()["subjects"]
        assert {s["subject"] for s in subjects} <= {STROKE_SUBJECT, "tmp-2b8e41"}
        assert client.get(f"/api/v1/subjects/{ALPHA}/latest", headers=everywhere).status_code == 200
        assert client.get("/api/v1/incidents/nope", headers=er_a).status_code == 404
    denied = _denials(database_url, "er:er-zhao")
    assert ("read_denied", "incident/inc-b", HOSPITAL_B) in {
        (a, r, d.get("hospital")) for a, r, d in denied
    }
    assert {d["reason"] for a, r, d in denied if r.startswith("incident/")} == {"other hospital"}
    assert ("read_denied", f"subject/{b_subject}/latest") in {(a, r) for a, r, _ in denied}
    writes = {
        r: d["reason"] for a, r, d in _denials(database_url, "er:er-qian") if a == "write_denied"
    }
    assert writes == {
        f"incident/{STROKE}/activation/{seeded.stroke_activation}": "other hospital",
        f"incident/{STROKE}": "other hospital",
        f"incident/{STROKE}/handoff": "other hospital",
    }


def test_routing_unrouted_incidents_and_diverting_one(database_url: str, tmp_path: Path) -> None:
    seed_incidents(database_url, datetime.now(UTC))  # no route for the ambulance: unrouted
    with api_client(database_url, tmp_path) as client:
        er_a = bearer(client, "er", "er-zhao", hospital=HOSPITAL_A)
        er_b = bearer(client, "er", "er-qian", hospital=HOSPITAL_B)
        admin = bearer(client, "admin", "ops")
        assert client.get("/api/v1/incidents", headers=er_a).json()["incidents"] == []
        assert client.get(f"/api/v1/incidents/{STROKE}", headers=er_a).status_code == 403
        # The ER of one hospital cannot claim an incident that is not routed to it.
        claim = client.put(
            f"/api/v1/incidents/{STROKE}/hospital", json={"hospital": HOSPITAL_A}, headers=er_a
        )
        assert claim.status_code == 403
        routed = client.put(
            f"/api/v1/incidents/{STROKE}/hospital",
            json={"hospital": HOSPITAL_A, "reason": "nearest stroke centre"},
            headers=admin,
        )
        assert routed.status_code == 200, routed.text
        assert routed.json() == {"incident": STROKE, "hospital": HOSPITAL_A, "previous": None}
        assert client.get(f"/api/v1/incidents/{STROKE}", headers=er_a).status_code == 200
        # CT is down at A: A diverts the ambulance to B, and no longer sees the incident.
        diverted = client.put(
            f"/api/v1/incidents/{STROKE}/hospital",
            json={"hospital": HOSPITAL_B, "reason": "CT down"},
            headers=er_a,
        )
        assert diverted.status_code == 200 and diverted.json()["previous"] == HOSPITAL_A
        assert client.get(f"/api/v1/incidents/{STROKE}", headers=er_a).status_code == 403
        assert client.get(f"/api/v1/incidents/{STROKE}", headers=er_b).status_code == 200
        # An ER opens incidents for its own hospital: by default, and only that one.
        mine = _open(client, er_a, gateway=OTHER_AMBULANCE, incident="inc-walk-in")
        assert mine.status_code == 201 and mine.json()["hospital"] == HOSPITAL_A
        theirs = _open(client, er_a, gateway=OTHER_AMBULANCE, hospital=HOSPITAL_B)
        assert theirs.status_code == 403
        # A gateway route applies to incidents opened after it, not to those already open.
        _route(client, OTHER_AMBULANCE, HOSPITAL_B)
        later = _open(client, admin, gateway=OTHER_AMBULANCE, incident="inc-later")
        assert later.json()["hospital"] == HOSPITAL_B
        shown = client.get(f"/api/v1/gateways/{OTHER_AMBULANCE}", headers=admin).json()
        assert shown["hospital"] == HOSPITAL_B
    routes = [(r[0], r[3]) for r in audit_rows(database_url) if r[1] == "incident_routed"]
    assert [(actor, d["previous"], d["hospital"]) for actor, d in routes] == [
        ("admin:ops", None, HOSPITAL_A),
        ("er:er-zhao", HOSPITAL_A, HOSPITAL_B),
    ]
    assert routes[0][1]["reason"] == "nearest stroke centre"
    opened = [r[3] for r in audit_rows(database_url) if r[1] == "incident_opened"]
    assert [d.get("hospital") for d in opened] == [HOSPITAL_A, HOSPITAL_B]
    gateway_routes = [r for r in audit_rows(database_url) if r[1] == "gateway_routed"]
    assert len(gateway_routes) == 1 and gateway_routes[0][3]["hospital"] == HOSPITAL_B
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT hospital FROM incidents WHERE incident = %s", (TRAUMA,))
        assert row.fetchone() == (None,)  # never routed: the trigger found no route


def test_an_er_users_password_login_carries_their_hospital(
    database_url: str, tmp_path: Path
) -> None:
    add_user(database_url, "er-zhao", "er", hospital=HOSPITAL_A)
    with api_client(database_url, tmp_path) as client:
        _route(client, AMBULANCE, HOSPITAL_B)
    seed_incidents(database_url, datetime.now(UTC))
    with api_client(database_url, tmp_path) as client:
        token = login(client, "er-zhao", PASSWORD).json()["access_token"]
        assert client.get("/api/v1/incidents", headers=auth(token)).json()["incidents"] == []
        assert client.get(f"/api/v1/incidents/{STROKE}", headers=auth(token)).status_code == 403


# ------------------------------------------------------------------------------- scopes

_SPEC = create_app().openapi()
#: (method, path, scope) of every /api/v1 operation but the login and the logout.
SCOPED_ROUTES = sorted(
    (method.upper(), path, operation.get(OPENAPI_KEY))
    for path, operations in _SPEC["paths"].items()
    if path.startswith(API_PREFIX + "/")
    and path not in PUBLIC_API_PATHS
    and path != f"{API_PREFIX}/auth/revoke"  # any token may log itself out
    for method, operation in operations.items()
)


def test_every_api_route_declares_one_known_scope() -> None:
    assert len(SCOPED_ROUTES) >= 20
    for method, path, scope in SCOPED_ROUTES:
        assert scope in SCOPES, (method, path, scope)
    used = {scope for _, _, scope in SCOPED_ROUTES}
    assert used == set(SCOPES)  # and every scope opens something


def _url(path: str) -> str:
    return (
        path.replace("{subject}", ALPHA)
        .replace("{incident}", STROKE)
        .replace("{gateway}", "gw-1")
        .replace("{alert_id}", "1")
        .replace("{activation_id}", "1")
    )


@pytest.mark.parametrize(("method", "path", "scope"), SCOPED_ROUTES)
def test_a_client_token_without_the_routes_scope_gets_403_and_an_audit_row(
    database_url: str, tmp_path: Path, method: str, path: str, scope: str
) -> None:
    with api_client(database_url, tmp_path) as client:
        key = signing_key(client)
        now = datetime.now(UTC)
        others = [s for s in SCOPES if s != scope]
        lacking = mint_token(key, user="platform", role="admin", now=now, scopes=others)
        response = client.request(method, _url(path), headers=auth(lacking), json={})
        assert response.status_code == 403, response.text
        assert scope in response.json()["detail"]
        holding = mint_token(key, user="holder", role="admin", now=now, scopes=[scope])
        allowed = client.request(method, _url(path), headers=auth(holding), json={})
        assert "lacks the scope" not in allowed.text
    (denial,) = _denials(database_url, "admin:platform")
    action, resource, detail = denial
    assert action == ("read_denied" if method == "GET" else "write_denied")
    assert resource == path.removeprefix(API_PREFIX + "/")  # the template, not the raw path
    assert (detail["reason"], detail["scope"]) == ("scope", scope)
    assert all(d["reason"] != "scope" for _, _, d in _denials(database_url, "admin:holder"))


def test_client_login_scopes_are_enforced_and_password_tokens_are_not_scoped(
    database_url: str, tmp_path: Path
) -> None:
    write_readings(database_url, alpha_spo2())
    add_client(database_url, "regional-platform", scopes=["readings:read", "alerts:read"])
    add_user(database_url, "dr-li", "doctor", contracted=[ALPHA])
    with api_client(database_url, tmp_path) as client:
        narrow = client.post(
            "/api/v1/auth/token",
            data={"grant_type": "client_credentials", "client_id": "regional-platform",
                  "client_secret": SECRET, "scope": "readings:read"},
        ).json()  # fmt: skip
        assert narrow["scope"] == "readings:read"
        headers = auth(narrow["access_token"])
        assert client.get(f"/api/v1/subjects/{ALPHA}/latest", headers=headers).status_code == 200
        assert client.get("/api/v1/alerts", headers=headers).status_code == 403  # not asked for
        assert client.get("/api/v1/gateways", headers=headers).status_code == 403  # not given
        unknown = client.post(
            "/api/v1/auth/token",
            data={"grant_type": "client_credentials", "client_id": "regional-platform",
                  "client_secret": SECRET, "scope": "readings:delete"},
        )  # fmt: skip
        assert unknown.status_code == 400 and unknown.json()["error"] == "invalid_scope"
        doctor = auth(login(client, "dr-li", PASSWORD).json()["access_token"])
        for url in (f"/api/v1/subjects/{ALPHA}/latest", "/api/v1/alerts", "/api/v1/gateways"):
            assert client.get(url, headers=doctor).status_code == 200, url
    denials = _denials(database_url, "service:regional-platform")
    assert [(r, d["scope"], d["granted"]) for _, r, d in denials] == [
        ("alerts", "alerts:read", ["readings:read"]),
        ("gateways", "gateways:read", ["readings:read"]),
    ]


# ----------------------------------------------------------------------------- throttle


def test_the_login_throttle_is_shared_between_api_processes(
    database_url: str, tmp_path: Path
) -> None:
    add_user(database_url, "dr-li", "doctor")
    typed_id = "11010119900307711X"  # someone types their ID number as the username
    # Two apps on one database: each keeps its own memory, as two processes would.
    with api_client(database_url, tmp_path) as first, api_client(database_url, tmp_path) as second:
        for attempt in range(USERNAME_FAILURE_LIMIT):
            app = first if attempt % 2 == 0 else second
            assert login(app, "dr-li", "wrong password!").status_code == 400
        assert login(first, "dr-li", PASSWORD).status_code == 429
        assert login(second, "dr-li", PASSWORD).status_code == 429
        assert login(second, typed_id, "whatever it is").status_code == 400
    with psycopg.connect(database_url) as conn:
        keys = [bytes(r[0]) for r in conn.execute("SELECT key FROM login_failures").fetchall()]
    assert len(keys) == 2 * (USERNAME_FAILURE_LIMIT + 1)  # a user row and an address row each
    assert all(b"dr-li" not in k and typed_id.encode() not in k for k in keys)  # hashes only


# ---------------------------------------------------------------------------- migration


def test_migration_13_backfills_scopes_and_leaves_old_incidents_unrouted(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    before_13 = tuple(m for m in schema.MIGRATIONS if m[0] < 13)
    monkeypatch.setattr(schema, "MIGRATIONS", before_13)
    now = datetime.now(UTC)
    with psycopg.connect(database_url) as conn:
        schema.migrate(conn)
        with conn.transaction():
            conn.execute(
                "INSERT INTO api_clients (client_id, secret_hash, role, scopes, created_at)"
                " VALUES ('old-platform', 'x', 'service', '{readings,audit,custom}', %s)",
                (now,),
            )
            conn.execute(
                "INSERT INTO incidents (incident, gateway, subject, state, opened_at,"
                " updated_at) VALUES ('inc-old', %s, 'tmp-old', '{}', %s, %s)",
                (AMBULANCE, now - timedelta(hours=1), now),
            )
    monkeypatch.undo()
    with psycopg.connect(database_url) as conn:
        migrate(conn)
        scopes = conn.execute("SELECT scopes FROM api_clients").fetchone()
        assert scopes == (["audit:read", "custom", "readings:read"],)
        row = conn.execute("SELECT hospital FROM incidents WHERE incident = 'inc-old'")
        assert row.fetchone() == (None,)
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(
                "INSERT INTO api_clients (client_id, secret_hash, role, created_at)"
                " VALUES ('gw-x', 'x', 'device', %s)",  # a device without its gateway
                (now,),
            )
