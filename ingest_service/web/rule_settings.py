"""A patient's rule settings (``subject_rules``): what the page shows and how an edit is
checked and stored.

Pure core: :func:`describe` lists the parameters and rules of the packs in force;
:func:`parse_edit` turns the form into ``SubjectOverrides`` and refuses what the rules engine
would refuse (it compiles them with :func:`alert_rules.build_ruleset`, the same check the
ingest service's ``RuleRunner`` makes, so a saved row is never silently dropped there).
Shell: :func:`store` upserts the row and writes the audit entry (old and new settings, who,
why) in one transaction; a stale form (someone saved in between) is refused.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from fastapi import Request
from psycopg.types.json import Jsonb

from alert_rules import DEFAULT_PACKS, PackError, SubjectOverrides, build_ruleset, load_pack
from alert_rules import pack_names as shipped_packs
from ingest_service.api.db import Connection
from ingest_service.api.deps import record
from ingest_service.api.tokens import Principal
from ingest_service.web import queries
from ingest_service.web.i18n import Lang, translate
from ingest_service.web.queries import RuleSettings
from ingest_service.web.session import PageError

MIN_REASON = 5
MAX_REASON = 500


@dataclass(frozen=True)
class ParameterView:
    """One pack parameter with the patient's value."""

    name: str
    pack: str
    unit: str
    default: float
    value: float | None
    description: str


@dataclass(frozen=True)
class RuleView:
    """One rule of the packs in force."""

    name: str
    pack: str
    severity: str
    disabled: bool


@dataclass(frozen=True)
class SettingsView:
    """Everything the settings form shows."""

    all_packs: tuple[str, ...]
    packs: tuple[str, ...]
    packs_are_default: bool
    parameters: tuple[ParameterView, ...]
    rules: tuple[RuleView, ...]
    stored: RuleSettings | None

    @property
    def version(self) -> str:
        """What the form sends back to detect a concurrent edit."""
        return self.stored.updated_at.isoformat() if self.stored is not None else ""


def describe(stored: RuleSettings | None) -> SettingsView:
    """The packs in force and their parameters and rules, with the patient's overrides."""
    packs = stored.packs if stored is not None and stored.packs is not None else DEFAULT_PACKS
    overrides = stored.parameters if stored is not None else {}
    disabled = set(stored.disabled_rules) if stored is not None else set()
    parameters: dict[str, ParameterView] = {}
    rules: dict[str, RuleView] = {}
    for name in packs:
        try:
            pack = load_pack(name)
        except PackError:
            continue  # a pack removed since the row was saved: the engine ignores it too
        for pname, parameter in pack.parameters.items():
            parameters.setdefault(
                pname,
                ParameterView(
                    name=pname,
                    pack=name,
                    unit=parameter.unit,
                    default=parameter.default,
                    value=overrides.get(pname),
                    description=parameter.description,
                ),
            )
        for rule in pack.rules:
            rules.setdefault(
                rule.name,
                RuleView(
                    name=rule.name,
                    pack=name,
                    severity=rule.severity,
                    disabled=rule.name in disabled,
                ),
            )
    return SettingsView(
        all_packs=shipped_packs(),
        packs=tuple(packs),
        packs_are_default=stored is None or stored.packs is None,
        parameters=tuple(parameters.values()),
        rules=tuple(rules.values()),
        stored=stored,
    )


@dataclass(frozen=True)
class Edit:
    """A checked edit, ready to store."""

    packs: tuple[str, ...]
    parameters: Mapping[str, float]
    disabled_rules: tuple[str, ...]
    reason: str


def parse_edit(
    subject: str, form: Mapping[str, Sequence[str]], lang: Lang = "en"
) -> tuple[Edit | None, list[str]]:
    """The edit from the form fields, or the list of problems (shown next to the form).

    Fields: ``packs`` (repeated), ``param.<name>`` (empty = the pack default), ``disabled``
    (repeated), ``reason`` (mandatory: it goes into the audit log and the row).
    """
    problems: list[str] = []
    known = set(shipped_packs())
    packs = tuple(dict.fromkeys(p for p in form.get("packs", ()) if p))
    unknown = [p for p in packs if p not in known]
    if unknown:
        problems.append(translate(lang, "rules_unknown_packs", packs=", ".join(unknown)))
    if not packs:
        problems.append(translate(lang, "rules_choose_pack"))
    defaults: dict[str, float] = {}
    for name in packs:
        if name in known:
            defaults.update({k: v.default for k, v in load_pack(name).parameters.items()})
    parameters: dict[str, float] = {}
    for key, values in form.items():
        if not key.startswith("param.") or not values or not values[0].strip():
            continue
        name = key.removeprefix("param.")
        try:
            value = float(values[0].strip())
        except ValueError:
            problems.append(translate(lang, "rules_not_a_number", name=name))
            continue
        if not math.isfinite(value):
            problems.append(translate(lang, "rules_not_a_number", name=name))
            continue
        if name not in defaults:
            continue  # a parameter of a pack just unticked: it no longer applies
        if value != defaults[name]:
            parameters[name] = value
    disabled = tuple(sorted({r for r in form.get("disabled", ()) if r}))
    reason_values = form.get("reason", ())
    reason = reason_values[0].strip() if reason_values else ""
    if len(reason) < MIN_REASON:
        problems.append(translate(lang, "rules_reason_short", n=MIN_REASON))
    if len(reason) > MAX_REASON:
        problems.append(translate(lang, "rules_reason_long", n=MAX_REASON))
    if problems:
        return None, problems
    override = SubjectOverrides(
        packs=packs,
        parameters=MappingProxyType(parameters),
        disabled_rules=frozenset(disabled),
    )
    try:
        build_ruleset(overrides={subject: override})
    except (PackError, ValueError) as exc:
        return None, [str(exc)]
    return Edit(packs, MappingProxyType(parameters), disabled, reason), []


def _as_json(settings: RuleSettings | None) -> dict[str, object] | None:
    if settings is None:
        return None
    return {
        "packs": list(settings.packs) if settings.packs is not None else None,
        "parameters": dict(settings.parameters),
        "disabled_rules": list(settings.disabled_rules),
    }


def store(
    conn: Connection,
    request: Request,
    who: Principal,
    subject: str,
    edit: Edit,
    version: str,
    now: datetime,
) -> None:
    """Upsert the row and audit the change (old → new, reason); 409 on a concurrent edit."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('subject_rules:' || %s))", (subject,))
        before = queries.rule_settings(conn, subject)
        current = before.updated_at.isoformat() if before is not None else ""
        if current != version:
            raise PageError(409, "conflict")
        conn.execute(
            "INSERT INTO subject_rules"
            " (subject, packs, parameters, disabled_rules, updated_at, updated_by, reason)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (subject) DO UPDATE SET packs = EXCLUDED.packs,"
            " parameters = EXCLUDED.parameters, disabled_rules = EXCLUDED.disabled_rules,"
            " updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by,"
            " reason = EXCLUDED.reason",
            (
                subject,
                list(edit.packs),
                Jsonb(dict(edit.parameters)),
                list(edit.disabled_rules),
                now,
                who.actor,
                edit.reason,
            ),
        )
        record(
            conn,
            request,
            who,
            f"subject/{subject}/rules",
            {
                "subject": subject,
                "before": _as_json(before),
                "after": {
                    "packs": list(edit.packs),
                    "parameters": dict(edit.parameters),
                    "disabled_rules": list(edit.disabled_rules),
                },
                "reason": edit.reason,
                "via": "web",
            },
            action="rules_changed",
        )
