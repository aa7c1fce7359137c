"""Who may read what: the role policy of the HTTP API as pure functions (docs/api.md).

| resource               | patient | doctor               | er      | admin | service | device  |
|------------------------|---------|----------------------|---------|-------|---------|---------|
| subjects, readings,    | own     | contracted (if the   | all (*) | all   | all     | no      |
| latest, alerts         |         | token lists them)    |         |       |         |         |
| incidents              | no      | contracted subjects  | all (*) | all   | no      | no      |
| gateways               | no      | yes                  | yes     | yes   | yes     | its own |
| dead letters           | no      | no                   | no      | yes   | yes     | no      |
| audit                  | no      | no                   | no      | yes   | no      | no      |

(*) An ``er`` token with a ``hospital`` claim: the incidents routed to that hospital and the
subjects of those incidents.

An ``er`` token with a ``hospital`` claim is scoped to the incidents routed to that hospital
(``incidents.hospital``, migration 13) and to the subjects of those incidents (and the
subjects they were merged into). Which subjects those are is data, so the pure functions here
cannot list them: :func:`visible_subjects` answers "none" for such a token (fail closed), and
the API asks :func:`ingest_service.api.deps.readable_subjects`, which looks them up. An ``er``
token without ``hospital`` reads every subject and incident (a single-hospital deployment, a
dispatch centre). A doctor token without a ``subjects`` claim is not restricted (the brief:
restricted "when the claim is present"). A ``device`` (a gateway's client) reads no patient
data at all.
"""

from __future__ import annotations

from ingest_service.api.tokens import Principal, Role

GATEWAY_ROLES: frozenset[Role] = frozenset({"doctor", "er", "admin", "service"})
DEAD_LETTER_ROLES: frozenset[Role] = frozenset({"admin", "service"})
AUDIT_ROLES: frozenset[Role] = frozenset({"admin"})
#: Roles that may read patient data at all (subject by subject, as below).
PATIENT_DATA_ROLES: frozenset[Role] = frozenset({"patient", "doctor", "er", "admin", "service"})
#: Roles that speak for one gateway only (their token's ``gateway`` claim).
DEVICE_ROLES: frozenset[Role] = frozenset({"device"})


def hospital_scope(principal: Principal) -> str | None:
    """The hospital an ``er`` token is confined to; None = not confined to one."""
    return principal.hospital if principal.role == "er" else None


def visible_subjects(principal: Principal) -> tuple[str, ...] | None:
    """The subjects a principal may read, as far as the token alone tells; None = every one.

    A hospital-scoped ``er`` token gets ``()`` here: its subjects are in the database
    (:func:`ingest_service.api.deps.readable_subjects` looks them up).
    """
    if principal.role == "patient":
        return (principal.subject,) if principal.subject is not None else ()
    if principal.role == "doctor":
        return principal.subjects
    if principal.role not in PATIENT_DATA_ROLES or hospital_scope(principal) is not None:
        return ()
    return None


def may_read_subject(principal: Principal, subject: str) -> bool:
    """Whether ``principal`` may read ``subject``'s readings, latest values and alerts, as far
    as the token alone tells (a hospital-scoped ``er`` token: never; see above)."""
    allowed = visible_subjects(principal)
    return allowed is None or subject in allowed


def may_see_hospital(principal: Principal, hospital: str | None) -> bool:
    """Whether an incident routed to ``hospital`` (None = not routed yet) is the principal's
    business as far as hospitals go (roles are checked apart)."""
    scope = hospital_scope(principal)
    return scope is None or scope == hospital
