"""``/api/v1/auth``: OAuth2 token endpoint (password and client-credentials grants) and token
revocation (issue 10 item 3; docs/api.md, Authentication).

- ``POST /api/v1/auth/token`` (RFC 6749 §4.3 and §4.4; form-encoded, §3.2) is the one
  ``/api/v1`` route without a bearer token: it is where tokens come from. Clients
  authenticate with HTTP Basic (§2.3.1) or ``client_id``/``client_secret`` in the form.
  Answers are RFC 6749 §5.1 / §5.2 JSON; failures are audited (``login_failed``) and
  throttled per username and per address (:class:`ingest_service.users.LoginThrottle`, 429;
  counted in the database, so shared by every API process).
- ``POST /api/v1/auth/revoke`` (bearer token): no body revokes the caller's own token (log
  out); ``{"token": ...}`` revokes a token of the caller's own account (or any, for an
  admin); ``{"jti": ...}`` revokes by token id, admin only (ids are in the audit log).

The form is parsed with the standard library (as the web pages do), so the API needs no
multipart parser; :data:`TOKEN_REQUEST_BODY` documents it in OpenAPI.

:func:`password_login` is shared with the web login form (``ingest_service.web.login``).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Body, Depends, HTTPException, Request, status
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from psycopg_pool import ConnectionPool, PoolTimeout
from pydantic import BaseModel, ConfigDict, Field

from ingest_service import audit, users
from ingest_service.api.db import Connection
from ingest_service.api.deps import (
    ConnectionDep,
    PrincipalDep,
    api_settings,
    record,
    revocations,
)
from ingest_service.api.scopes import UnknownScopeError, canonical
from ingest_service.api.tokens import (
    Principal,
    TokenError,
    decode_token,
    mint_token,
)

PREFIX = "/api/v1/auth"
#: The ``/api/v1`` routes that take no bearer token (the route-walk test skips them).
PUBLIC_API_PATHS = frozenset({f"{PREFIX}/token"})

#: A token request is a handful of short fields.
MAX_FORM_BYTES = 8 * 1024
MAX_NAME_LENGTH = 128

router = APIRouter(prefix=PREFIX, tags=["auth"])

basic_scheme = HTTPBasic(
    auto_error=False, description="Client credentials (client_id:client_secret), RFC 6749 §2.3.1."
)

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class LoginRefused(Exception):  # noqa: N818 (a refusal, not a fault)
    """A token request refused: RFC 6749 §5.2 ``error`` code, HTTP status, description."""

    def __init__(
        self,
        status_code: int,
        error: str,
        description: str,
        *,
        retry_after: float | None = None,
        basic: bool = False,
    ) -> None:
        super().__init__(description)
        self.status_code = status_code
        self.error = error
        self.description = description
        self.retry_after = retry_after
        self.basic = basic

    def response(self) -> JSONResponse:
        """The RFC 6749 §5.2 error response."""
        headers = dict(_NO_STORE)
        if self.retry_after is not None:
            headers["Retry-After"] = str(int(self.retry_after + 0.999))
        if self.basic:
            headers["WWW-Authenticate"] = 'Basic realm="vitalstream"'
        return JSONResponse(
            {"error": self.error, "error_description": self.description},
            status_code=self.status_code,
            headers=headers,
        )


@dataclass(frozen=True)
class Granted:
    """A minted access token and who it speaks for."""

    token: str
    principal: Principal
    expires_in: int
    scope: str | None = None

    def response(self) -> JSONResponse:
        """The RFC 6749 §5.1 success response (plus ``expires_at`` for people reading it)."""
        assert self.principal.expires_at is not None
        body: dict[str, Any] = {
            "access_token": self.token,
            "token_type": "bearer",
            "expires_in": self.expires_in,
            "expires_at": self.principal.expires_at.isoformat(),
        }
        if self.scope:
            body["scope"] = self.scope
        return JSONResponse(body, headers=_NO_STORE)


# --------------------------------------------------------------------------- app state


@dataclass(frozen=True)
class _Login:
    hasher: users.SecretHasher
    throttle: users.LoginThrottle


_STATE_LOCK = threading.Lock()


def _login_state(request: Request) -> _Login:
    """The app's hasher and throttle (made on first use; the throttle's counts are in the
    database, keyed under the app's signing key)."""
    with _STATE_LOCK:
        state: _Login | None = getattr(request.app.state, "login", None)
        if state is None:
            state = _Login(users.SecretHasher(), users.LoginThrottle(request.app.state.signing_key))
            request.app.state.login = state
        return state


def _address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def _failure(
    conn: Connection,
    request: Request,
    *,
    actor: str,
    grant: str,
    reason: str,
    channel: str,
    locked: bool,
) -> None:
    """One ``login_failed`` row. An unknown name is not recorded (people type their ID number
    or their password into the username field)."""
    audit.append(
        conn,
        audit.AuditEntry(
            time=datetime.now(UTC),
            actor=actor,
            action="login_failed",
            resource=f"auth/{channel}",
            detail={
                "grant_type": grant,
                "reason": reason,
                "from": _address(request),
                "locked": locked,
            },
        ),
    )


def _throttled(conn: Connection, request: Request, state: _Login, name: str, now: datetime) -> None:
    with conn.transaction():
        wait = state.throttle.retry_after(conn, name, _address(request), now)
    if wait > 0:
        raise LoginRefused(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "too_many_attempts",
            f"too many failed logins; try again in {int(wait + 0.999)} s",
            retry_after=wait,
        )


def _count_failure(
    conn: Connection, request: Request, state: _Login, name: str, now: datetime
) -> bool:
    return state.throttle.record_failure(conn, name, _address(request), now)


def _mint(request: Request, now: datetime, **claims: Any) -> tuple[str, Principal, int]:
    ttl = api_settings(request).api_token_ttl_s
    key: bytes = request.app.state.signing_key
    token = mint_token(key, now=now, ttl_s=ttl, **claims)
    return token, decode_token(key, token), ttl


def _pool(request: Request) -> ConnectionPool[Connection]:
    pool: ConnectionPool[Connection] = request.app.state.pool
    return pool


# --------------------------------------------------------------------------- grants


def password_login(request: Request, username: str, password: str, *, channel: str) -> Granted:
    """RFC 6749 §4.3: check a user's password and mint their token, or raise LoginRefused.

    ``channel`` (``token`` for the API, ``web`` for the login page) goes into the audit rows.
    A refusal is raised after its audit row has committed.
    """
    state = _login_state(request)
    now = datetime.now(UTC)
    if not username or len(username) > MAX_NAME_LENGTH or not password:
        raise LoginRefused(400, "invalid_request", "username and password are required")
    outcome: Granted | LoginRefused
    with _pool(request).connection() as conn:
        _throttled(conn, request, state, username, now)
        with conn.transaction():
            outcome = _check_password(conn, request, state, username, password, channel, now)
    if isinstance(outcome, LoginRefused):
        raise outcome
    return outcome


def _check_password(
    conn: Connection,
    request: Request,
    state: _Login,
    username: str,
    password: str,
    channel: str,
    now: datetime,
) -> Granted | LoginRefused:
    outcome: Granted | LoginRefused
    user = users.get_user(conn, username)
    right = len(password) <= users.MAX_PASSWORD_LENGTH and state.hasher.verify(
        user.password_hash if user is not None else None, password
    )
    if user is not None and right and not user.disabled:
        outcome = _grant_user(conn, request, state, user, password, channel, now)
    else:
        locked = _count_failure(conn, request, state, username, now)
        reason = "unknown_user" if user is None else "disabled" if right else "bad_password"
        _failure(
            conn,
            request,
            actor="anonymous" if user is None else f"{user.role}:{user.username}",
            grant="password",
            reason=reason,
            channel=channel,
            locked=locked,
        )
        # Only someone who knows the password learns that the account is disabled.
        outcome = LoginRefused(
            400,
            "invalid_grant",
            "this account is disabled" if reason == "disabled" else "wrong username or password",
        )
    return outcome


def _grant_user(
    conn: Connection,
    request: Request,
    state: _Login,
    user: users.User,
    password: str,
    channel: str,
    now: datetime,
) -> Granted:
    state.throttle.record_success(conn, user.username)
    if state.hasher.needs_rehash(user.password_hash):
        users.rehash_password(conn, user.username, state.hasher.hash(password))
    token, who, ttl = _mint(
        request,
        now,
        user=user.username,
        role=user.role,
        subject=user.subject,
        # A doctor is always restricted to the contract list, even when it is empty.
        subjects=list(user.contracted_subjects) if user.role == "doctor" else None,
        hospital=user.hospital,
    )
    record(conn, request, who, f"auth/{channel}", {"grant_type": "password"}, action="login")
    return Granted(token, who, ttl)


def client_login(
    request: Request,
    client_id: str,
    secret: str,
    requested_scope: str | None,
    *,
    basic: bool,
) -> Granted:
    """RFC 6749 §4.4: check a client's secret and mint its token.

    ``scope`` asks for some of the client's scopes (default: all of them); the token carries
    them in its ``scope`` claim and every route checks its own (``deps.scoped``). An old
    single-word scope name is read as its new name (``readings`` = ``readings:read``).
    """
    state = _login_state(request)
    now = datetime.now(UTC)
    if not client_id or len(client_id) > MAX_NAME_LENGTH or not secret:
        raise LoginRefused(401, "invalid_client", "client authentication failed", basic=basic)
    outcome: Granted | LoginRefused
    with _pool(request).connection() as conn:
        _throttled(conn, request, state, client_id, now)
        with conn.transaction():
            outcome = _check_secret(conn, request, state, client_id, secret, requested_scope, now)
    if isinstance(outcome, LoginRefused):
        if outcome.error == "invalid_client":
            outcome.basic = basic
        raise outcome
    return outcome


def _wanted_scopes(requested: str | None) -> tuple[str, ...] | None:
    """The scopes asked for (empty: all the client's), or None when one is unknown."""
    try:
        return canonical((requested or "").split())
    except UnknownScopeError:
        return None


def _check_secret(
    conn: Connection,
    request: Request,
    state: _Login,
    client_id: str,
    secret: str,
    requested_scope: str | None,
    now: datetime,
) -> Granted | LoginRefused:
    outcome: Granted | LoginRefused
    client = users.get_client(conn, client_id)
    right = len(secret) <= users.MAX_PASSWORD_LENGTH and state.hasher.verify(
        client.secret_hash if client is not None else None, secret
    )
    if client is not None and right and not client.disabled:
        state.throttle.record_success(conn, client_id)
        wanted = _wanted_scopes(requested_scope)
        if wanted is None or any(scope not in client.scopes for scope in wanted):
            outcome = LoginRefused(400, "invalid_scope", "scope not granted to this client")
        else:
            granted = wanted or client.scopes
            token, who, ttl = _mint(
                request,
                now,
                user=client.client_id,
                role=client.role,
                hospital=client.hospital,
                gateway=client.gateway,
                scopes=granted,
            )
            record(
                conn,
                request,
                who,
                "auth/token",
                {"grant_type": "client_credentials", "scope": list(granted)},
                action="login",
            )
            outcome = Granted(token, who, ttl, " ".join(granted))
    else:
        locked = _count_failure(conn, request, state, client_id, now)
        reason = "unknown_client" if client is None else "disabled" if right else "bad_secret"
        _failure(
            conn,
            request,
            actor="anonymous" if client is None else f"{client.role}:{client.client_id}",
            grant="client_credentials",
            reason=reason,
            channel="token",
            locked=locked,
        )
        outcome = LoginRefused(401, "invalid_client", "client authentication failed")
    return outcome


# --------------------------------------------------------------------------- endpoints


@dataclass(frozen=True)
class TokenForm:
    """The parameters of a token request, or why they could not be read."""

    fields: Mapping[str, str]
    problem: str | None = None


async def token_form(request: Request) -> TokenForm:
    """The ``application/x-www-form-urlencoded`` body of a token request (RFC 6749 §3.2).

    Empty values count as absent; a repeated parameter is an ``invalid_request``.
    """
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if kind != "application/x-www-form-urlencoded" or len(body) > MAX_FORM_BYTES:
        return TokenForm({}, "an application/x-www-form-urlencoded body is required")
    try:
        fields = parse_qs(body.decode("utf-8"), max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        return TokenForm({}, "the form could not be read")
    if any(len(values) > 1 for values in fields.values()):
        return TokenForm({}, "a parameter appears more than once")
    return TokenForm({name: values[0] for name, values in fields.items() if values[0]})


TOKEN_REQUEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["grant_type"],
                    "properties": {
                        "grant_type": {
                            "type": "string",
                            "enum": ["password", "client_credentials"],
                        },
                        "username": {"type": "string", "description": "password grant"},
                        "password": {
                            "type": "string",
                            "format": "password",
                            "description": "password grant",
                        },
                        "client_id": {
                            "type": "string",
                            "description": "client_credentials (or HTTP Basic)",
                        },
                        "client_secret": {
                            "type": "string",
                            "format": "password",
                            "description": "client_credentials (or HTTP Basic)",
                        },
                        "scope": {"type": "string", "description": "space-separated scopes"},
                    },
                }
            }
        },
    }
}


class TokenResponse(BaseModel):
    """RFC 6749 §5.1."""

    access_token: str
    token_type: str = "bearer"  # noqa: S105 (RFC 6749 §7.1 token type, not a secret)
    expires_in: int
    expires_at: datetime
    scope: str | None = None


class OAuthError(BaseModel):
    """RFC 6749 §5.2."""

    error: str
    error_description: str


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": OAuthError, "description": "invalid_request, invalid_grant, ..."},
    401: {"model": OAuthError, "description": "invalid_client"},
    429: {"model": OAuthError, "description": "too many failed logins (Retry-After)"},
}


@router.post(
    "/token",
    response_model=TokenResponse,
    responses=_ERRORS,
    openapi_extra=TOKEN_REQUEST_BODY,
    summary="Log in: OAuth2 password or client-credentials grant",
)
def token(
    request: Request,
    body: Annotated[TokenForm, Depends(token_form)],
    basic: Annotated[HTTPBasicCredentials | None, Depends(basic_scheme)],
) -> JSONResponse:
    """A short-lived bearer token for a user (``grant_type=password``) or a service client
    (``grant_type=client_credentials``)."""
    form = body.fields
    grant = form.get("grant_type")
    try:
        if body.problem is not None:
            raise LoginRefused(400, "invalid_request", body.problem)
        if grant == "password":
            return password_login(
                request, form.get("username", ""), form.get("password", ""), channel="token"
            ).response()
        if grant == "client_credentials":
            if basic is not None and ("client_id" in form or "client_secret" in form):
                raise LoginRefused(400, "invalid_request", "use one client authentication")
            if basic is not None:
                client_id, secret = basic.username, basic.password
            else:
                client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
            return client_login(
                request, client_id, secret, form.get("scope"), basic=basic is not None
            ).response()
        if grant is None:
            raise LoginRefused(400, "invalid_request", "grant_type is required")
        raise LoginRefused(400, "unsupported_grant_type", "use password or client_credentials")
    except LoginRefused as refused:
        return refused.response()
    except PoolTimeout:
        return LoginRefused(
            status.HTTP_503_SERVICE_UNAVAILABLE, "temporarily_unavailable", "database busy"
        ).response()


class RevokeRequest(BaseModel):
    """What to revoke: nothing (the caller's own token), a ``token``, or (admin) a ``jti``."""

    model_config = ConfigDict(extra="forbid")

    token: str | None = Field(None, max_length=8192, description="A token to revoke.")
    jti: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_-]{1,128}$", description="A token id (admin only)."
    )
    reason: str = Field("", max_length=500, description="Why (kept in the audit log).")


class RevokeResponse(BaseModel):
    """The revoked token id (null when the token was already invalid) and whether it was
    revoked before."""

    revoked: str | None
    already_revoked: bool = False


def _forbid(conn: Connection, request: Request, who: Principal, detail: str) -> HTTPException:
    with conn.transaction():
        record(conn, request, who, "auth/revoke", {"reason": detail}, action="revoke_denied")
    return HTTPException(status.HTTP_403_FORBIDDEN, detail=detail)


@router.post("/revoke", response_model=RevokeResponse, summary="Revoke a token")
def revoke(
    request: Request,
    who: PrincipalDep,
    conn: ConnectionDep,
    body: Annotated[RevokeRequest | None, Body()] = None,
) -> RevokeResponse:
    """Refuse a token from now on, on every ``/api/v1`` route and page, until it expires."""
    wanted = body or RevokeRequest()
    if wanted.token is not None and wanted.jti is not None:
        raise HTTPException(422, "give token or jti, not both")
    target: str | None
    owner: str | None
    if wanted.jti is not None:
        if who.role != "admin":
            raise _forbid(conn, request, who, "only an admin revokes by token id")
        target, owner = wanted.jti, None
    elif wanted.token is not None:
        try:
            other = decode_token(request.app.state.signing_key, wanted.token)
        except TokenError:
            return RevokeResponse(revoked=None)  # RFC 7009 §2.2: nothing left to do
        if who.role != "admin" and other.actor != who.actor:
            raise _forbid(conn, request, who, "not your token")
        target, owner = other.token_id, other.actor
    else:
        target, owner = who.token_id, who.actor
    if target is None:
        raise HTTPException(422, "that token has no id (jti) to revoke")
    with conn.transaction():
        fresh = users.revoke_token(
            conn, target, by=who.actor, reason=wanted.reason, now=datetime.now(UTC)
        )
        record(
            conn,
            request,
            who,
            "auth/revoke",
            {"revoked": target, "owner": owner, "reason": wanted.reason},
            action="revoke",
        )
    revocations(request).invalidate()
    return RevokeResponse(revoked=target, already_revoked=not fresh)
