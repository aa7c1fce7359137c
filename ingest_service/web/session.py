"""Who is looking at a page: the API's JWT from a cookie or the Authorization header.

Pages use the same tokens and the same role rules as the API (``ingest_service.api.access``).
A browser gets its token into the ``vs_token`` cookie through ``/login`` (HttpOnly,
SameSite=Strict, expiring with the token). Because a cookie is sent by the browser on its own,
every state-changing request authenticated by the cookie must also carry the CSRF token
(``X-CSRF-Token`` header, which htmx sends, or a ``csrf`` form field): an HMAC of the token's
``jti`` under the API signing key, so it needs no server-side session store.

Failures raise :class:`PageError`; :class:`PageRoute` turns it into an HTML error page (the
API's JSON errors would be useless to a person in a browser).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute

from ingest_service.api.deps import token_refused
from ingest_service.api.tokens import Principal, Role, TokenError, decode_token

TOKEN_COOKIE = "vs_token"  # noqa: S105 (a cookie name, not a secret)
LANG_COOKIE = "vs_lang"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"
#: A page form is a few fields; anything bigger is not ours.
MAX_FORM_BYTES = 64 * 1024

DOCTOR_ROLES: frozenset[Role] = frozenset({"doctor"})
PATIENT_ROLES: frozenset[Role] = frozenset({"patient"})


class PageError(Exception):
    """An error a page shows as HTML: 401 (log in), 403, 404, 409 or 422."""

    def __init__(self, status: int, message: str, *, login: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.login = login


#: Set by ``routes`` (the renderer lives there, and importing it here would be circular).
ErrorRenderer = Callable[[Request, PageError], Response]
_error_renderer: list[ErrorRenderer] = []


def set_error_renderer(render: ErrorRenderer) -> None:
    """Install the function that renders a :class:`PageError` as a page."""
    _error_renderer[:] = [render]


class PageRoute(APIRoute):
    """An APIRoute whose :class:`PageError` (from the endpoint or a dependency) becomes HTML."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        inner = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await inner(request)
            except PageError as error:
                return _error_renderer[0](request, error)

        return handler


@dataclass(frozen=True)
class Viewer:
    """A verified principal and how it came (a cookie needs CSRF protection on writes)."""

    principal: Principal
    via_cookie: bool
    csrf: str


def csrf_token(key: bytes, principal: Principal) -> str:
    """The CSRF token bound to one JWT (its ``jti``): stable for the token's lifetime."""
    message = f"csrf|{principal.actor}|{principal.token_id or ''}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:40]


def token_from(request: Request) -> tuple[str | None, bool]:
    """The raw token and whether it came from the cookie (the header wins when both)."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip(), False
        return None, False
    cookie = request.cookies.get(TOKEN_COOKIE)
    return (cookie, True) if cookie else (None, False)


def viewer(request: Request) -> Viewer:
    """The verified viewer of this request, or a 401 page."""
    token, via_cookie = token_from(request)
    if token is None:
        raise PageError(401, "login_required", login=True)
    key: bytes = request.app.state.signing_key
    try:
        who = decode_token(key, token)
    except TokenError as error:
        reason = "session_expired" if error.kind == "expired_token" else "login_required"
        raise PageError(401, reason, login=True) from None
    if token_refused(request, who):  # revoked, or the account was disabled
        raise PageError(401, "login_required", login=True)
    request.state.principal = who
    seen = Viewer(principal=who, via_cookie=via_cookie, csrf=csrf_token(key, who))
    request.state.viewer = seen
    return seen


ViewerDep = Annotated[Viewer, Depends(viewer)]


def require_roles(seen: Viewer, roles: frozenset[Role]) -> Principal:
    """The principal when its role may use this page, else a 403 page."""
    if seen.principal.role not in roles:
        raise PageError(403, "wrong_role")
    return seen.principal


async def form_fields(request: Request) -> Mapping[str, list[str]]:
    """An ``application/x-www-form-urlencoded`` body (what forms and htmx send) as lists.

    Parsed here rather than with FastAPI's ``Form`` so the pages need no multipart parser.
    """
    if request.method != "POST":
        return {}
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise PageError(413, "form_too_large")
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if body and kind != "application/x-www-form-urlencoded":
        raise PageError(415, "form_encoding")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise PageError(422, "form_encoding") from None
    return parse_qs(text, keep_blank_values=True, max_num_fields=200)


FormDep = Annotated[Mapping[str, list[str]], Depends(form_fields)]


def field(form: Mapping[str, list[str]], name: str) -> str:
    """The first value of a form field, stripped ('' when absent)."""
    values = form.get(name)
    return values[0].strip() if values else ""


def check_csrf(request: Request, seen: Viewer, form: Mapping[str, list[str]]) -> None:
    """A cookie-authenticated write must carry this token's CSRF value (else 403)."""
    if not seen.via_cookie:
        return  # an Authorization header is never sent by the browser on its own
    sent = request.headers.get(CSRF_HEADER) or field(form, CSRF_FIELD)
    if not sent or not hmac.compare_digest(sent, seen.csrf):
        raise PageError(403, "csrf")
