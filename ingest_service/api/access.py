"""Who may read what: the role policy of the HTTP API as pure functions (docs/api.md).

| resource            | patient  | doctor                  | er  | admin | service |
|---------------------|----------|-------------------------|-----|-------|---------|
| subjects, readings, | own only | contracted (if claimed) | all | all   | all     |
| latest, alerts      |          |                         |     |       |         |
| gateways            | no       | yes                     | yes | yes   | yes     |
| dead letters        | no       | no                      | no  | yes   | yes     |
| audit               | no       | no                      | no  | yes   | no      |

``er`` reads any subject because an incoming ambulance patient is not contracted to anyone
yet (issue 10 routes incidents to a hospital; there is no incident table to scope it by);
every such read is audited and the leak-detection rules watch the log. A doctor token without
a ``subjects`` claim is not restricted (the brief: restricted "when the claim is present").
"""

from __future__ import annotations

from ingest_service.api.tokens import Principal, Role

GATEWAY_ROLES: frozenset[Role] = frozenset({"doctor", "er", "admin", "service"})
DEAD_LETTER_ROLES: frozenset[Role] = frozenset({"admin", "service"})
AUDIT_ROLES: frozenset[Role] = frozenset({"admin"})


def visible_subjects(principal: Principal) -> tuple[str, ...] | None:
    """The subjects a principal may read; None = every subject."""
    if principal.role == "patient":
        return (principal.subject,) if principal.subject is not None else ()
    if principal.role == "doctor":
        return principal.subjects
    return None


def may_read_subject(principal: Principal, subject: str) -> bool:
    """Whether ``principal`` may read ``subject``'s readings, latest values and alerts."""
    allowed = visible_subjects(principal)
    return allowed is None or subject in allowed
