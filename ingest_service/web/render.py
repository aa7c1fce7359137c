"""Jinja2 templates (shipped in the package), their filters, and the pages' HTTP headers.

Autoescaping is on for every template. Responses carry a Content-Security-Policy that allows
scripts and styles from this server only (no inline script, no CDN), forbid framing, and are
``no-store``: pages hold patient data and must not stay in a shared browser's cache.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from ingest_service.web.i18n import Lang, as_lang, choose_lang, translate
from ingest_service.web.session import LANG_COOKIE
from ingest_service.web.settings import WebSettings

SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
        " connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self';"
        " frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}


def web_settings(request: Request) -> WebSettings:
    """The pages' settings, read once per app (environment and TOML, like the API's)."""
    state = request.app.state
    settings: WebSettings | None = getattr(state, "web_settings", None)
    if settings is None:
        settings = WebSettings()
        state.web_settings = settings
    return settings


def _number(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "\u2013"
    return f"{value:.{digits}f}"


#: UCUM codes (the catalogue's canonical units) as people write them.
UNITS: Mapping[str, str] = {"mm[Hg]": "mmHg", "Cel": "°C", "{score}": "", "{bool}": ""}


def display_unit(unit: str | None) -> str:
    """A UCUM unit as printed on a page."""
    return UNITS.get(unit or "", unit or "")


@cache
def environment() -> Environment:
    """The template environment (built once)."""
    env = Environment(
        loader=PackageLoader("ingest_service.web", "templates"),
        autoescape=select_autoescape(["html"], default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["number"] = _number
    env.filters["unit"] = display_unit
    return env


def local_time(zone: ZoneInfo, moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A time in the display zone (an en dash when unknown)."""
    return moment.astimezone(zone).strftime(fmt) if moment is not None else "\u2013"


#: The texts static/app.js and static/er.js show (base.html hands them over as JSON).
JS_MESSAGES: tuple[str, ...] = (
    "js_done",
    "js_failed",
    "js_unreachable",
    "js_reload_alerts",
    "js_patients_updated",
    "js_live_stopped",
    "js_reload_incidents",
    "js_board_updated",
    "js_reload_vitals",
    "js_prealerts_changed",
    "er_no_data_yet",
    "er_last_data_s",
    "er_last_data_min",
    "er_last_data_h",
    "er_no_value_short",
)


def js_messages(lang: Lang) -> dict[str, str]:
    """The scripts' texts in ``lang``; ``{code}``/``{n}`` are filled in by the script."""
    return {key: translate(lang, key, code="{code}", n="{n}") for key in JS_MESSAGES}


def clinician_lang(request: Request) -> Lang:
    """The language of a clinician page (doctor, ECG reader, ER): ``?lang=``, the cookie, the
    browser, else English (their language before the catalogue covered them)."""
    return choose_lang(
        request.query_params.get("lang"),
        request.cookies.get(LANG_COOKIE),
        request.headers.get("accept-language"),
        default="en",
    )


def clinician_page(
    request: Request, template: str, context: Mapping[str, Any], *, status_code: int = 200
) -> HTMLResponse:
    """:func:`page` in :func:`clinician_lang`; a ``?lang=`` choice is remembered in a cookie."""
    lang = clinician_lang(request)
    response = page(request, template, context, status_code=status_code, lang=lang)
    if as_lang(request.query_params.get("lang")) is not None:
        response.set_cookie(
            LANG_COOKIE, lang, max_age=365 * 86400, samesite="strict", httponly=True
        )
    return response


def page(
    request: Request,
    template: str,
    context: Mapping[str, Any],
    *,
    status_code: int = 200,
    lang: Lang = "en",
) -> HTMLResponse:
    """Render ``template`` with the common context (translator, times, CSRF) as a response."""
    settings = web_settings(request)
    seen = getattr(request.state, "viewer", None)

    def t(key: str, **values: object) -> str:
        return translate(lang, key, **values)

    def when(moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        return local_time(settings.zone, moment, fmt)

    html = (
        environment()
        .get_template(template)
        .render(
            {
                "request": request,
                "t": t,
                "lang": lang,
                "js_messages": js_messages(lang),
                "when": when,
                "zone": settings.web_timezone,
                "viewer": seen,
                "csrf": seen.csrf if seen is not None else "",
                **context,
            }
        )
    )
    return HTMLResponse(html, status_code=status_code, headers=dict(SECURITY_HEADERS))
