"""FastAPI dependencies: the verified principal, a pooled connection, the audit helper.

Authentication is a router-level dependency of every ``/api/v1`` router (see ``app.py``), so
an endpoint cannot be added without it; a test walks the route table to prove it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import psycopg
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg_pool import ConnectionPool, PoolTimeout

from ingest_service import audit, users
from ingest_service.api.access import PATIENT_DATA_ROLES, hospital_scope, visible_subjects
from ingest_service.api.db import Connection
from ingest_service.api.scopes import OPENAPI_KEY, SCOPES, UnknownScopeError
from ingest_service.api.settings import ApiSettings
from ingest_service.api.tokens import LEEWAY_S, Principal, Role, TokenError, decode_token

#: Declares the scheme in OpenAPI (the /docs "Authorize" button); errors are ours (401).
bearer_scheme = HTTPBearer(auto_error=False, description="A token from `vitalstream token`.")

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="vitalstream"'}


def _unauthorised(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers=_CHALLENGE)


def api_settings(request: Request) -> ApiSettings:
    """The settings the app was created with."""
    settings: ApiSettings = request.app.state.settings
    return settings


def principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    """The verified token's principal, or 401 (missing, malformed, forged or expired)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorised("a bearer token is required")
    key: bytes = request.app.state.signing_key
    try:
        who = decode_token(key, credentials.credentials)
    except TokenError as error:
        raise _unauthorised(error.detail) from None
    if token_refused(request, who):
        raise _unauthorised("token revoked or account disabled")
    request.state.principal = who
    return who


def revocations(request: Request) -> users.RevocationCache:
    """The app's revocation list (created on first use; reloaded every couple of seconds)."""
    cache: users.RevocationCache | None = getattr(request.app.state, "revocations", None)
    if cache is not None:
        return cache
    pool: ConnectionPool[Connection] = request.app.state.pool
    # A revoked token is refused until it would have expired; none lives longer than this.
    horizon = timedelta(seconds=api_settings(request).api_token_max_ttl_s + LEEWAY_S)

    def load() -> users.RevocationSnapshot:
        with pool.connection() as conn:
            return users.load_revocations(conn, datetime.now(UTC) - horizon)

    cache = users.RevocationCache(load)
    request.app.state.revocations = cache
    return cache


def token_refused(request: Request, who: Principal) -> bool:
    """Whether ``who``'s token is revoked or its account disabled (503 when the list cannot
    be read: fail closed). Shared by the API and the web pages."""
    try:
        return revocations(request).is_refused(time.monotonic(), who.token_id, who.user)
    except (PoolTimeout, psycopg.Error):
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, detail="revocation list unavailable"
        ) from None


def connection(request: Request) -> Iterator[Connection]:
    """A connection from the pool for the length of the request; 503 when none comes.

    Endpoints open their own ``conn.transaction()`` so that the read and its audit row commit
    before the response is built; the pool rolls back anything left open on return.
    """
    pool: ConnectionPool[Connection] = request.app.state.pool
    try:
        with pool.connection() as conn:
            yield conn
    except PoolTimeout:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, detail="database busy or unreachable"
        ) from None
    except psycopg.OperationalError:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, detail="database unreachable"
        ) from None


PrincipalDep = Annotated[Principal, Depends(principal)]
ConnectionDep = Annotated[Connection, Depends(connection)]
SettingsDep = Annotated[ApiSettings, Depends(api_settings)]


def record(
    conn: Connection,
    request: Request,
    who: Principal,
    resource: str,
    detail: Mapping[str, Any],
    action: str = "read",
) -> None:
    """Append one audit row for this request (inside the caller's transaction, if any).

    ``detail`` holds the query as the client sent it plus what was returned (counts), the
    role, the token id, the client address and the optional ``X-Purpose`` header (issue 10:
    who, role, subject, what, purpose, when, from where). Only pseudonymous subjects appear.
    """
    client = request.client.host if request.client is not None else None
    purpose = request.headers.get("x-purpose")
    entry = audit.AuditEntry(
        time=datetime.now(UTC),
        actor=who.actor,
        action=action,
        resource=resource,
        detail={
            "role": who.role,
            "token": who.token_id,
            "from": client,
            "purpose": purpose[:200] if purpose else None,
            **detail,
        },
    )
    audit.append(conn, entry)


def require_role(
    conn: Connection, request: Request, who: Principal, roles: frozenset[Role], resource: str
) -> None:
    """403 (and an audited ``read_denied`` row) when the principal's role is not in ``roles``."""
    if who.role in roles:
        return
    with conn.transaction():
        record(conn, request, who, resource, {"reason": "role"}, action="read_denied")
    raise HTTPException(
        status.HTTP_403_FORBIDDEN, detail=f"role {who.role} may not read this resource"
    )


#: The subjects of the incidents routed to a hospital, and the subjects those temporary
#: (ambulance) subjects were merged into once the patient was identified.
_HOSPITAL_SUBJECTS = """
SELECT i.subject FROM incidents i WHERE i.hospital = %(hospital)s
UNION
SELECT m.subject FROM subject_merges m JOIN incidents i ON i.subject = m.temporary
WHERE i.hospital = %(hospital)s
"""
_HOSPITAL_HAS_SUBJECT = """
SELECT EXISTS (SELECT 1 FROM incidents i WHERE i.hospital = %(hospital)s
               AND i.subject = %(subject)s)
    OR EXISTS (SELECT 1 FROM subject_merges m JOIN incidents i ON i.subject = m.temporary
               WHERE i.hospital = %(hospital)s AND m.subject = %(subject)s)
"""


def readable_subjects(conn: Connection, who: Principal) -> tuple[str, ...] | None:
    """The subjects ``who`` may read (None = every one), looking up a hospital-scoped ``er``
    token's incident subjects in the database (run inside the caller's transaction)."""
    hospital = hospital_scope(who)
    if hospital is None:
        return visible_subjects(who)
    rows = conn.execute(_HOSPITAL_SUBJECTS, {"hospital": hospital}).fetchall()
    return tuple(sorted(str(row[0]) for row in rows))


def may_read(conn: Connection, who: Principal, subject: str) -> bool:
    """Whether ``who`` may read ``subject``'s readings, latest values and alerts."""
    hospital = hospital_scope(who)
    if hospital is None:
        allowed = visible_subjects(who)
        return allowed is None or subject in allowed
    row = conn.execute(_HOSPITAL_HAS_SUBJECT, {"hospital": hospital, "subject": subject}).fetchone()
    return bool(row and row[0])


def require_subject(
    conn: Connection, request: Request, who: Principal, subject: str, resource: str
) -> None:
    """403 (and an audited ``read_denied`` row) when ``who`` may not read ``subject``.

    The denial is audited in its own transaction so it stays even though the request fails:
    a doctor probing other doctors' patients is exactly what the leak rules look for. A role
    that reads no patient data at all (``device``) is refused with ``reason: role``.
    """
    require_role(conn, request, who, PATIENT_DATA_ROLES, resource)
    with conn.transaction():
        allowed = may_read(conn, who, subject)
    if allowed:
        return
    with conn.transaction():
        record(
            conn,
            request,
            who,
            resource,
            {"subject": subject, "reason": "not permitted"},
            action="read_denied",
        )
    raise HTTPException(status.HTTP_403_FORBIDDEN, detail="not permitted to read this subject")


class ScopeCheck:
    """The dependency behind :func:`scoped`: 403 and an audit row (``reason: scope``) when
    the token lacks the scope (:mod:`ingest_service.api.scopes`)."""

    def __init__(self, scope: str) -> None:
        if scope not in SCOPES:
            raise UnknownScopeError(scope)
        self.scope = scope

    def __call__(self, request: Request, who: PrincipalDep, conn: ConnectionDep) -> None:
        if who.has_scope(self.scope):
            return
        action = "read_denied" if request.method in {"GET", "HEAD"} else "write_denied"
        with conn.transaction():
            record(
                conn,
                request,
                who,
                _route_template(request),
                {
                    "reason": "scope",
                    "scope": self.scope,
                    "granted": sorted(who.scopes or ()),
                },
                action=action,
            )
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, detail=f"this token lacks the scope {self.scope}"
        )


def _route_template(request: Request) -> str:
    """The route's path template (``subjects/{subject}/readings``): never the raw path, which
    could hold anything a client typed (an ID number in place of a subject)."""
    template = str(getattr(request.scope.get("route"), "path", ""))
    return template.removeprefix("/api/v1").strip("/") or "api"


def scoped(scope: str) -> dict[str, Any]:
    """Route-decorator arguments that require ``scope``: ``@router.get("", **scoped(...))``."""
    return {
        "dependencies": [Depends(ScopeCheck(scope))],
        "openapi_extra": {OPENAPI_KEY: scope},
    }
