"""Reconnect backoff with full jitter: a pure function of the attempt number and a random draw.

Why jitter: after a broker restart or a cell-tower outage every gateway of a region loses
the link at the same moment. With plain exponential backoff (paho's own: min, 2*min, 4*min …)
they all come back in lock-step waves that hit the broker together. "Full jitter" (Brooker,
"Exponential Backoff And Jitter", AWS Architecture Blog, 2015) draws the delay uniformly from
``[0, min(cap, base * 2**attempt)]``: the expected wait still grows exponentially, but the
reconnects of many gateways spread evenly over the window.

The random source is passed in (``random.Random(seed).random`` in tests, the module-level
``random.random`` in the agent), so the function is deterministic for a given source.
"""

from __future__ import annotations

from collections.abc import Callable

#: A source of uniform draws in ``[0, 1)`` (``random.Random().random``).
RandomSource = Callable[[], float]

DEFAULT_BASE_S = 1.0
DEFAULT_CAP_S = 60.0


def backoff_ceiling(
    attempt: int, *, base_s: float = DEFAULT_BASE_S, cap_s: float = DEFAULT_CAP_S
) -> float:
    """The upper end of the window for ``attempt`` (0 = first retry): ``min(cap, base * 2**n)``."""
    if base_s <= 0 or cap_s <= 0:
        raise ValueError("base_s and cap_s must be positive")
    if attempt < 0:
        raise ValueError("attempt must be >= 0")
    # 2**attempt overflows a float around attempt 1024; the cap is reached long before.
    if attempt >= 64:
        return cap_s
    return min(cap_s, base_s * 2.0**attempt)


def reconnect_delay(
    attempt: int,
    random: RandomSource,
    *,
    base_s: float = DEFAULT_BASE_S,
    cap_s: float = DEFAULT_CAP_S,
) -> float:
    """Seconds to wait before reconnect ``attempt`` (0-based): uniform in ``[0, ceiling]``."""
    ceiling = backoff_ceiling(attempt, base_s=base_s, cap_s=cap_s)
    draw = random()
    if not 0.0 <= draw < 1.0:
        raise ValueError(f"the random source must return a value in [0, 1), got {draw!r}")
    return draw * ceiling
