"""How a range query picks its resolution (pure; docs/api.md, "Downsampling").

``auto`` answers with raw readings when there are few enough of them, else with the 5-minute
rollup when its buckets fit, else with the 1-hour rollup. Counting the raw rows (bounded by
the limit, so at most ``limit + 1`` index entries are read) instead of guessing from the span
keeps sparse series (a weekly weight) raw over long spans and dense ones (1 Hz SpO2)
downsampled over short ones.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Literal

Resolution = Literal["raw", "5min", "1h"]
RequestedResolution = Literal["raw", "5min", "1h", "auto"]

#: Bucket width and rollup relation per downsampled resolution (ingest_service.schema).
WIDTHS: dict[Resolution, timedelta] = {
    "raw": timedelta(0),
    "5min": timedelta(minutes=5),
    "1h": timedelta(hours=1),
}
ROLLUP_TABLES: dict[Resolution, str] = {"5min": "readings_5min", "1h": "readings_1h"}


def buckets(span: timedelta, width: timedelta) -> int:
    """How many buckets of ``width`` a span touches at most (one extra for a ragged start)."""
    return math.ceil(span / width) + 1


def choose_resolution(raw_points: int, span: timedelta, series: int, limit: int) -> Resolution:
    """The finest resolution whose answer stays within ``limit`` points.

    ``raw_points`` is the number of raw readings in the range (a count capped at
    ``limit + 1`` is enough); ``series`` the number of metrics answered (>= 1). When even the
    hourly rollup exceeds the limit, the hourly rollup is still the answer (the coarsest
    there is); the client narrows the range.
    """
    if raw_points <= limit:
        return "raw"
    if buckets(span, WIDTHS["5min"]) * max(series, 1) <= limit:
        return "5min"
    return "1h"
