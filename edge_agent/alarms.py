"""Local alarms: the gateway runs the ``alert_rules`` engine over the readings it accepts.

Policy (docs/edge.md, "Local alarms"): the engine runs on **every** accepted reading, whether
the uplink is up or not, because streaks and open alerts only mean something over the whole
sequence (an engine started when the link drops would have no history). Every alarm at or
above ``min_severity`` becomes a :class:`vitals.LocalAlarm` in the outbox's ``alarm`` lane, so
it reaches the platform first when the link is back. The local notification (console log, the
hooks, the optional command such as a buzzer script) fires ``always`` (default) or only while
the uplink is ``offline`` (when the platform's own alerting covers the online case).

The rule set is the configured packs (default ``core``) plus the thresholds of the config
down-link (:func:`local_ruleset`, pure). The engine's memory lives in RAM: after a restart a
streak starts again from zero, like the ingest service's before its checkpoint.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from alert_rules import EMPTY_STATE, EngineState, Pack, RuleSet, build_ruleset, evaluate
from alert_rules.pack_schema import Confirm, ThresholdRule
from alert_rules.packs import PackError
from vitals import AlarmThreshold, Alert, LocalAlarm, Reading, Severity

log = logging.getLogger("vitalstream.edge.alarms")

SEVERITY_RANK: dict[Severity, int] = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
LOCAL_PACK = "gateway_local"

#: A local notification hook: called in the agent's thread; must return quickly.
AlarmHook = Callable[[LocalAlarm], None]


@dataclass(frozen=True, slots=True)
class LocalAlarmSettings:
    """What the gateway alarms on and how it tells the people in the room."""

    packs: tuple[str, ...] = ("core",)
    min_severity: Severity = "high"
    notify: Literal["always", "offline"] = "always"
    #: A program run (not waited for) per alarm, e.g. ``("/usr/local/bin/buzzer",)``; the
    #: alarm is in its environment (``VITALSTREAM_ALARM_*``, the JSON in ``..._JSON``).
    command: tuple[str, ...] | None = None
    hooks: tuple[AlarmHook, ...] = field(default=())


def local_ruleset(packs: Iterable[str | Pack], thresholds: Sequence[AlarmThreshold]) -> RuleSet:
    """The packs plus the down-link's thresholds as one extra pack (pure; PackError if bad).

    A threshold named like a rule of the packs is refused: the engine keys its memory by rule
    name, and two rules sharing it would corrupt each other's streaks.
    """
    chosen: list[str | Pack] = list(packs)
    if thresholds:
        chosen.append(thresholds_pack(thresholds))
    rules = build_ruleset(chosen)
    names = [rule.name for pack in rules.packs for rule in pack.rules]
    clashes = sorted({name for name in names if names.count(name) > 1})
    if clashes:
        raise PackError(f"local threshold names clash with rule pack rules: {clashes}")
    return rules


def thresholds_pack(thresholds: Sequence[AlarmThreshold]) -> Pack:
    """The down-link's thresholds as a rule pack (each a ``threshold`` rule)."""
    rules = tuple(
        ThresholdRule(
            kind="threshold",
            name=t.name,
            metric=t.metric,
            op=t.op,
            value=t.value,
            severity=t.severity,
            message=t.message or f"{t.metric} {t.op} {t.value:g} (local threshold {t.name})",
            source="gateway config down-link (set by the care team for this gateway)",
            clear_margin=t.clear_margin,
            confirm=Confirm(consecutive=t.consecutive),
        )
        for t in thresholds
    )
    return Pack(
        pack=LOCAL_PACK,
        version="1.0.0",
        title="Gateway local thresholds",
        description="Thresholds pushed to this gateway by the platform (config down-link).",
        rules=rules,
    )


def alarms_from_alerts(
    alerts: Iterable[Alert],
    readings: Sequence[Reading],
    *,
    gateway: str,
    raised_at: datetime,
    uplink_up: bool,
    min_severity: Severity,
    new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
) -> list[LocalAlarm]:
    """The engine's alerts at or above ``min_severity`` as local alarms (pure but for ids)."""
    devices = {(r.subject, r.metric, r.time): r.device for r in readings}
    floor = SEVERITY_RANK[min_severity]
    return [
        LocalAlarm(
            event_id=new_id(),
            gateway=gateway,
            subject=alert.subject,
            rule=alert.rule,
            severity=alert.severity,
            time=alert.time,
            raised_at=raised_at,
            message=alert.message,
            metric=alert.metric,
            value=alert.value,
            device=devices.get((alert.subject, alert.metric or "", alert.time)),
            uplink="up" if uplink_up else "down",
        )
        for alert in alerts
        if SEVERITY_RANK[alert.severity] >= floor
    ]


class LocalAlarms:
    """The gateway's rules engine, its state, and the local notification (agent thread only)."""

    def __init__(self, gateway: str, settings: LocalAlarmSettings) -> None:
        self.gateway = gateway
        self.settings = settings
        self._rules = local_ruleset(settings.packs, ())
        self._state: EngineState = EMPTY_STATE
        self._children: list[subprocess.Popen[bytes]] = []

    def set_rules(self, rules: RuleSet) -> None:
        """Switch to new rules (the config down-link); the engine's memory is kept."""
        self._rules = rules

    def judge(
        self, readings: Sequence[Reading], now: datetime, *, uplink_up: bool
    ) -> list[LocalAlarm]:
        """Run the engine over newly accepted readings; return the alarms to raise."""
        if not readings:
            return []
        alerts, self._state = evaluate(readings, self._state, now, self._rules)
        return alarms_from_alerts(
            alerts,
            readings,
            gateway=self.gateway,
            raised_at=now,
            uplink_up=uplink_up,
            min_severity=self.settings.min_severity,
        )

    def notify(self, alarms: Sequence[LocalAlarm], *, uplink_up: bool) -> None:
        """Tell the people in the room: console, hooks, command (never raises)."""
        self._reap()
        if not alarms or (self.settings.notify == "offline" and uplink_up):
            return
        for alarm in alarms:
            log.critical(
                "LOCAL ALARM %s [%s] subject %s: %s%s",
                alarm.rule,
                alarm.severity,
                alarm.subject,
                alarm.message,
                "" if uplink_up else " (uplink down: raised locally)",
            )
            for hook in self.settings.hooks:
                try:
                    hook(alarm)
                except Exception:
                    log.exception("local alarm hook %r failed", hook)
            if self.settings.command:
                self._run_command(alarm)

    def _run_command(self, alarm: LocalAlarm) -> None:
        assert self.settings.command is not None
        env = dict(os.environ)
        env.update(
            {
                "VITALSTREAM_ALARM_RULE": alarm.rule,
                "VITALSTREAM_ALARM_SEVERITY": alarm.severity,
                "VITALSTREAM_ALARM_SUBJECT": alarm.subject,
                "VITALSTREAM_ALARM_MESSAGE": alarm.message,
                "VITALSTREAM_ALARM_JSON": json.dumps(alarm.model_dump(mode="json")),
            }
        )
        try:
            self._children.append(
                subprocess.Popen(  # noqa: S603 - the operator's configured program, no shell
                    list(self.settings.command),
                    env=env,
                    stdin=subprocess.DEVNULL,
                )
            )
        except OSError as exc:
            log.error("local alarm command %s could not run: %s", self.settings.command[0], exc)

    def _reap(self) -> None:
        self._children = [child for child in self._children if child.poll() is None]
