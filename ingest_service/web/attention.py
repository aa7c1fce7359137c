"""What needs a doctor's attention first: the panel's ranking (pure; docs/web.md).

Order, most urgent first:

1. the highest severity among **unacknowledged** open alerts (critical > high > medium > low
   > info): someone has to look at these;
2. the highest severity among acknowledged open alerts (seen, still going on);
3. the newest open alert (a fresh problem before an old one);
4. a silent device (no reading for ``silent_after``): the patient may be fine, or not
   measuring, or the gateway is down; either way somebody should call;
5. then the subject's pseudonym, so the order is stable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType

#: Higher is more urgent (vitals.models.Severity).
SEVERITY_RANK: Mapping[str, int] = MappingProxyType(
    {"info": 1, "low": 2, "medium": 3, "high": 4, "critical": 5}
)
#: Home patients measure once or twice a day; a day without any reading is "silent".
DEFAULT_SILENT_AFTER = timedelta(hours=24)


@dataclass(frozen=True)
class PatientStatus:
    """One row of the doctor's panel."""

    subject: str
    last_reading_at: datetime | None
    #: severity -> count of open alerts not yet acknowledged / acknowledged.
    active: Mapping[str, int] = field(default_factory=dict)
    acknowledged: Mapping[str, int] = field(default_factory=dict)
    newest_alert_at: datetime | None = None
    newest_alert_message: str | None = None

    @property
    def open_alerts(self) -> int:
        """Open alerts, acknowledged or not."""
        return sum(self.active.values()) + sum(self.acknowledged.values())

    @property
    def top_severity(self) -> str | None:
        """The highest severity of any open alert."""
        return _highest([*self.active, *self.acknowledged])


@dataclass(frozen=True)
class RankedPatient:
    """A panel row with what the ranking decided about it."""

    status: PatientStatus
    silent: bool
    silent_for: timedelta | None


def _highest(severities: Iterable[str]) -> str | None:
    ranked = [s for s in severities if s in SEVERITY_RANK]
    return max(ranked, key=SEVERITY_RANK.__getitem__) if ranked else None


def is_silent(last_reading_at: datetime | None, now: datetime, silent_after: timedelta) -> bool:
    """No reading at all, or none for longer than ``silent_after``."""
    return last_reading_at is None or now - last_reading_at > silent_after


def rank_patients(
    patients: Iterable[PatientStatus], now: datetime, silent_after: timedelta
) -> list[RankedPatient]:
    """The panel, most urgent first (see the module docstring)."""
    rows = [
        RankedPatient(
            status=p,
            silent=is_silent(p.last_reading_at, now, silent_after),
            silent_for=(now - p.last_reading_at) if p.last_reading_at is not None else None,
        )
        for p in patients
    ]

    def key(row: RankedPatient) -> tuple[int, int, float, int, str]:
        p = row.status
        active = _highest(s for s, n in p.active.items() if n > 0)
        acknowledged = _highest(s for s, n in p.acknowledged.items() if n > 0)
        newest = p.newest_alert_at.timestamp() if p.newest_alert_at is not None else 0.0
        return (
            -SEVERITY_RANK.get(active or "", 0),
            -SEVERITY_RANK.get(acknowledged or "", 0),
            -newest,
            0 if row.silent else 1,
            p.subject,
        )

    return sorted(rows, key=key)


def ago(now: datetime, then: datetime | None) -> tuple[str, int] | None:
    """A relative time as a catalogue key and number: ('hours_ago', 3); None when unknown."""
    if then is None:
        return None
    seconds = max((now - then).total_seconds(), 0.0)
    if seconds < 60:
        return ("just_now", 0)
    if seconds < 3600:
        return ("minutes_ago", int(seconds // 60))
    if seconds < 48 * 3600:
        return ("hours_ago", int(seconds // 3600))
    return ("days_ago", int(seconds // 86400))
