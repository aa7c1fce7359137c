"""Per-resource scopes of client-credentials tokens (docs/api.md, Scopes; issue 10 item 3).

A service client (``api_clients.scopes``) asks for some of its scopes at login; its token
carries them in the ``scope`` claim, and every ``/api/v1`` route declares the one scope it
needs with :func:`ingest_service.api.deps.scoped`. A token without the scope gets 403 and a
``read_denied`` or ``write_denied`` audit row (``reason: scope``). People's tokens (password grant,
``vitalstream token``) carry no ``scope`` claim: their role alone decides, as before.

Scopes narrow a client's role, they never widen it: an ``admin`` client with only
``readings:read`` reads readings and nothing else, a ``service`` client with
``audit:read`` still may not read the audit log (the role says no).

``POST /api/v1/auth/revoke`` needs no scope: any token may log itself out.
"""

from __future__ import annotations

from collections.abc import Iterable

#: Every scope a client may be given, and what it opens.
SCOPES: dict[str, str] = {
    "readings:read": "subjects, readings (raw and downsampled), latest values",
    "alerts:read": "alert lists",
    "alerts:write": "acknowledge, resolve, snooze, shelve, escalate alerts",
    "incidents:read": "incidents, one incident, its FHIR handoff Bundle",
    "incidents:write": "open, update, route and hand over incidents; acknowledge pre-alerts",
    "gateways:read": "gateway status, silent gateways, a gateway's registered devices",
    "gateways:write": "a gateway's own status (device clients); default incident routes (admin)",
    "dead-letters:read": "dead letters with their raw bytes",
    "audit:read": "the audit log",
}

#: Scopes of migration 10's free-form era, and what they mean now (migration 13 renames the
#: stored ones; a client asking for an old name at login gets the new one).
LEGACY_SCOPES: dict[str, str] = {
    "readings": "readings:read",
    "subjects": "readings:read",
    "alerts": "alerts:read",
    "incidents": "incidents:read",
    "gateways": "gateways:read",
    "dead-letters": "dead-letters:read",
    "audit": "audit:read",
}

#: The OpenAPI extension that names a route's scope (clients read it; a test walks it).
OPENAPI_KEY = "x-required-scope"


class UnknownScopeError(ValueError):
    """A scope that is not in :data:`SCOPES`."""


def canonical(scopes: Iterable[str]) -> tuple[str, ...]:
    """Sorted known scopes, legacy names translated; :class:`UnknownScopeError` otherwise."""
    out: set[str] = set()
    for scope in scopes:
        name = LEGACY_SCOPES.get(scope, scope)
        if name not in SCOPES:
            raise UnknownScopeError(scope)
        out.add(name)
    return tuple(sorted(out))
