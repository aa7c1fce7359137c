"""The outbox overflow policy: what to drop when the outbox holds more rows than its bound.

Pure (STYLE.md): given the rows waiting per lane and the bound, say how many rows to drop from
each lane. The outbox shell deletes that many of the **oldest** rows of each lane (lowest row
id first), records them and reports them (docs/reliability.md, "Overflow").

Order (issue 6, ARCHITECTURE.md lanes): **backfill first, then waveform, then vitals; alarms
never**. Backfill is old data a device or a late source delivered (the least urgent); ECG
snippets are context for a clinician, not measurements; current vitals come last. An alarm is
the reason the system exists: when alarms alone exceed the bound the outbox is allowed to grow
past it (and says so), because dropping an alarm to save disk would be the wrong trade.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from vitals import Lane

#: Lanes the policy may drop from, first to last. ``alarm`` is not here, on purpose.
DROP_ORDER: Final[tuple[Lane, ...]] = ("backfill", "waveform", "vitals")

#: Default bound in rows, sized for a Raspberry Pi's SD card: a reading row is ~0.5 kB on disk
#: (JSON payload ~350 B + row and index overhead), so 500 000 rows are ~250 MB: a small part of
#: a 16-32 GB card (the OS and logs keep most of it), yet ~17 hours of 8 devices at 1 Hz
#: (28 800 rows/h), or weeks of a home gateway's sparse readings, before anything is dropped.
#: ECG snippets are ~10 kB each but come one per device per minute at most (docs/edge.md).
DEFAULT_MAX_ROWS: Final = 500_000


def overflow_drops(counts: Mapping[Lane, int], max_rows: int) -> dict[Lane, int]:
    """How many rows to drop per lane so that at most ``max_rows`` remain.

    Drops from :data:`DROP_ORDER` lanes, as few as needed, exhausting one lane before the next;
    never from ``alarm``. When the alarms alone exceed ``max_rows`` every other lane is emptied
    and the result still leaves more than ``max_rows`` rows (alarms are never dropped).
    Lanes with nothing to drop are absent from the result.
    """
    if max_rows < 0:
        raise ValueError("max_rows must not be negative")
    if any(count < 0 for count in counts.values()):
        raise ValueError("lane counts must not be negative")
    excess = sum(counts.values()) - max_rows
    drops: dict[Lane, int] = {}
    for lane in DROP_ORDER:
        if excess <= 0:
            break
        take = min(excess, counts.get(lane, 0))
        if take:
            drops[lane] = take
            excess -= take
    return drops
