"""Reconnect backoff: full jitter, exponential ceiling, capped, deterministic per random source."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.backoff import backoff_ceiling, reconnect_delay


def test_ceiling_doubles_per_attempt_until_the_cap() -> None:
    ceilings = [backoff_ceiling(n, base_s=1.0, cap_s=60.0) for n in range(9)]
    assert ceilings == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]
    assert backoff_ceiling(10_000, base_s=1.0, cap_s=60.0) == 60.0  # no float overflow


@given(
    attempt=st.integers(min_value=0, max_value=5000),
    draw=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
    base=st.floats(min_value=0.01, max_value=10.0),
    cap=st.floats(min_value=0.01, max_value=600.0),
)
def test_delay_is_within_zero_and_the_ceiling(
    attempt: int, draw: float, base: float, cap: float
) -> None:
    delay = reconnect_delay(attempt, lambda: draw, base_s=base, cap_s=cap)
    assert 0.0 <= delay <= min(cap, backoff_ceiling(attempt, base_s=base, cap_s=cap))


def test_extreme_draws_give_the_window_ends() -> None:
    assert reconnect_delay(3, lambda: 0.0) == 0.0
    assert reconnect_delay(3, lambda: 0.999999) == pytest.approx(8.0, rel=1e-5)


def test_mean_delay_grows_with_the_attempt_and_stops_at_the_cap() -> None:
    rng = random.Random(7)

    def mean(attempt: int) -> float:
        return sum(reconnect_delay(attempt, rng.random, cap_s=60.0) for _ in range(4000)) / 4000

    means = [mean(n) for n in range(8)]
    for earlier, later in itertools.pairwise(means[:6]):
        assert later > earlier * 1.6  # about doubling (expected: ceiling / 2)
    assert means[6] == pytest.approx(30.0, rel=0.08)  # capped: uniform over [0, 60]
    assert means[7] == pytest.approx(30.0, rel=0.08)


def test_jitter_spreads_gateways_that_lost_the_link_together() -> None:
    rng = random.Random(1)
    delays = [reconnect_delay(5, rng.random) for _ in range(1000)]
    # Full jitter: the 1000 gateways do not come back in one wave.
    assert len({round(d, 3) for d in delays}) > 900
    assert min(delays) < 2.0
    assert max(delays) > 30.0


def test_same_seed_same_delays() -> None:
    first = random.Random(42)
    second = random.Random(42)
    a = [reconnect_delay(n % 10, first.random) for n in range(50)]
    b = [reconnect_delay(n % 10, second.random) for n in range(50)]
    assert a == b
    assert a != [reconnect_delay(n % 10, random.Random(43).random) for n in range(50)]


@pytest.mark.parametrize(
    ("attempt", "base", "cap"), [(-1, 1.0, 60.0), (0, 0.0, 60.0), (0, 1.0, -1.0)]
)
def test_bad_arguments_are_refused(attempt: int, base: float, cap: float) -> None:
    with pytest.raises(ValueError, match="must"):
        reconnect_delay(attempt, random.Random(0).random, base_s=base, cap_s=cap)


def test_a_random_source_outside_the_unit_interval_is_refused() -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        reconnect_delay(0, lambda: 1.0)


def test_the_link_paces_reconnects_with_the_jittered_delays() -> None:
    import socket
    import time

    from edge_agent.link import GatewayLink, LinkBackoff
    from vitals import BrokerAddress

    with socket.socket() as sock:  # a port where nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    draws = random.Random(3)
    expected = random.Random(3)
    backoff = LinkBackoff(base_s=0.05, cap_s=0.2, random=draws.random)
    with GatewayLink("gw-backoff", BrokerAddress("127.0.0.1", port), "t", backoff=backoff) as link:
        time.sleep(1.5)
        delays = list(link.reconnect_delays)
    assert len(delays) >= 4  # every failed attempt chose a new delay
    assert delays[:4] == [
        reconnect_delay(n, expected.random, base_s=0.05, cap_s=0.2) for n in range(4)
    ]
    assert all(0.0 <= d <= 0.2 for d in delays)
