"""``/login`` (a token into an HttpOnly cookie), ``/logout``, and the HTML error pages.

The form takes a username and password (the API's password grant,
``ingest_service.api.routers.auth.password_login``: same throttle, same audit rows, channel
``web``). A token minted by an operator (``vitalstream token``) still works: open
``/login?token=...`` or POST it as the ``token`` field (tests and operations). The cookie
lives as long as the token; ``/logout`` revokes it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated

import psycopg
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from psycopg_pool import ConnectionPool, PoolTimeout

from ingest_service.api.db import Connection
from ingest_service.api.deps import record, revocations, token_refused
from ingest_service.api.routers.auth import LoginRefused, password_login
from ingest_service.api.tokens import Principal, TokenError, decode_token
from ingest_service.users import revoke_token
from ingest_service.web.patient import lang_of
from ingest_service.web.render import SECURITY_HEADERS, page
from ingest_service.web.session import (
    TOKEN_COOKIE,
    FormDep,
    PageError,
    PageRoute,
    field,
    set_error_renderer,
    token_from,
)

router = APIRouter(route_class=PageRoute, include_in_schema=False)
log = logging.getLogger(__name__)

#: Where each role starts.
HOME = {"doctor": "/doctor", "patient": "/me", "er": "/er"}


def home_of(who: Principal) -> str:
    """The start page of a role (roles without pages get the API docs)."""
    return HOME.get(who.role, "/docs")


def local_path(target: str | None) -> str | None:
    """``target`` when it is a path on this server (never another site: no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target


def _login(request: Request, token: str, target: str | None = None) -> Response:
    key: bytes = request.app.state.signing_key
    try:
        who = decode_token(key, token)
    except TokenError as error:
        reason = "session_expired" if error.kind == "expired_token" else "invalid_token"
        raise PageError(401, reason, login=True) from None
    if token_refused(request, who):
        raise PageError(401, "invalid_token", login=True)
    response = RedirectResponse(
        local_path(target) or home_of(who), status_code=303, headers=dict(SECURITY_HEADERS)
    )
    lifetime = (
        int((who.expires_at - datetime.now(UTC)).total_seconds())
        if who.expires_at is not None
        else 900
    )
    response.set_cookie(
        TOKEN_COOKIE,
        token,
        max_age=max(lifetime, 1),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.get("/login", response_model=None)
def login_page(
    request: Request,
    token: Annotated[str | None, Query(max_length=4096)] = None,
    lang: Annotated[str | None, Query(max_length=16)] = None,
    next_page: Annotated[str | None, Query(alias="next", max_length=500)] = None,
) -> Response:
    """With ``?token=``: log in and go to ``next`` or the role's start page; else the form."""
    if token:
        return _login(request, token, next_page)
    return page(
        request,
        "login.html",
        {"message": None, "next": local_path(next_page) or ""},
        lang=lang_of(request, lang),
    )


@router.post("/login", response_model=None)
def login_form(request: Request, form: FormDep) -> Response:
    """The form's POST: username and password, or a token (kept out of URLs and logs)."""
    username = field(form, "username")
    if username:
        password = (form.get("password") or [""])[0]  # not stripped: spaces may be in it
        try:
            granted = password_login(request, username, password, channel="web")
        except LoginRefused as refused:
            if refused.status_code == 429:
                raise PageError(429, "too_many_attempts", login=True) from None
            raise PageError(401, "login_failed", login=True) from None
        return _login(request, granted.token, field(form, "next"))
    token = field(form, "token")
    if not token:
        raise PageError(401, "login_required", login=True)
    return _login(request, token, field(form, "next"))


@router.get("/", response_model=None)
def start(request: Request) -> Response:
    """The start page of whoever holds a valid token, else the login form."""
    token, _ = token_from(request)
    if token:
        try:
            who = decode_token(request.app.state.signing_key, token)
        except TokenError:
            pass
        else:
            return RedirectResponse(home_of(who), status_code=303)
    return RedirectResponse("/login", status_code=303)


@router.get("/logout")
def logout(request: Request) -> Response:
    """Revoke the cookie's token (shared PCs in clinics) and forget the cookie."""
    token, via_cookie = token_from(request)
    if token and via_cookie:
        _revoke_own(request, token)
    response = RedirectResponse("/login", status_code=303, headers=dict(SECURITY_HEADERS))
    response.delete_cookie(TOKEN_COOKIE, path="/", httponly=True, samesite="strict")
    return response


def _revoke_own(request: Request, token: str) -> None:
    """Revoke a still-valid token on logout (best effort: the cookie goes either way)."""
    try:
        who = decode_token(request.app.state.signing_key, token)
    except TokenError:
        return
    if who.token_id is None:
        return
    pool: ConnectionPool[Connection] = request.app.state.pool
    try:
        with pool.connection() as conn, conn.transaction():
            if revoke_token(
                conn, who.token_id, by=who.actor, reason="logout", now=datetime.now(UTC)
            ):
                record(conn, request, who, "auth/web", {"revoked": who.token_id}, action="logout")
    except (PoolTimeout, psycopg.Error):
        log.warning("logout: could not revoke the token; it expires on its own")
        return
    revocations(request).invalidate()


def render_error(request: Request, error: PageError) -> Response:
    """A :class:`PageError` as a page in the viewer's language (401 offers the login form)."""
    lang = lang_of(request, request.query_params.get("lang"))
    template = "login.html" if error.login else "error.html"
    context = {"message": error.message, "next": local_path(request.url.path) or ""}
    response: HTMLResponse = page(request, template, context, status_code=error.status, lang=lang)
    if error.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="vitalstream"'
        response.delete_cookie(TOKEN_COOKIE, path="/", httponly=True, samesite="strict")
    return response


set_error_renderer(render_error)
