"""Helpers shared by the login/revocation tests (no tests here): accounts in a real database.

Named test_auth_* so it sits with the files it serves; it defines no test functions.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
from fastapi.testclient import TestClient

from ingest_service import migrate, users

#: Passwords of the planted accounts (synthetic; long enough for the policy).
PASSWORD = "correct horse battery"
SECRET = "s3rvice-secret-for-tests-only-0123456789"

_HASHER = users.SecretHasher()


def add_user(database_url: str, username: str, role: str, **fields: Any) -> None:
    """Create a user with :data:`PASSWORD` (migrating first)."""
    with psycopg.connect(database_url) as conn:
        migrate(conn)
        with conn.transaction():
            users.add_user(
                conn,
                _HASHER,
                username=username,
                role=role,
                password=PASSWORD,
                now=datetime.now(UTC),
                **fields,
            )


def add_client(database_url: str, client_id: str, role: str = "service", **fields: Any) -> None:
    """Register a client with :data:`SECRET`."""
    with psycopg.connect(database_url) as conn:
        migrate(conn)
        with conn.transaction():
            users.add_client(
                conn,
                _HASHER,
                client_id=client_id,
                role=role,
                secret=SECRET,
                now=datetime.now(UTC),
                **fields,
            )


def set_disabled(database_url: str, name: str, disabled: bool = True) -> None:
    """Disable (or enable) an account directly in the database, as the CLI does."""
    with psycopg.connect(database_url) as conn, conn.transaction():
        assert users.set_disabled(conn, name, disabled)


def password_token(client: TestClient, username: str, password: str = PASSWORD) -> str:
    """Log in with the password grant and return the access token (asserting success)."""
    response = client.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": username, "password": password},
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def login(client: TestClient, username: str, password: str) -> Any:
    """One password-grant request (the raw response)."""
    return client.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": username, "password": password},
    )


def auth(token: str) -> dict[str, str]:
    """An Authorization header."""
    return {"Authorization": f"Bearer {token}"}
