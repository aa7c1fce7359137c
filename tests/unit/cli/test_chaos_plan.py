"""The chaos schedule: evenly spread, alternating, every kill planned once."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from vitalstream.chaos import kill_plan


def test_three_and_three_alternate_evenly() -> None:
    plan = kill_plan(70.0, 3, 3)
    assert [kind for _, kind in plan] == ["broker", "ingest"] * 3
    assert [at for at, _ in plan] == [10.0, 20.0, 30.0, 40.0, 50.0, 60.0]


@given(st.floats(5, 600), st.integers(0, 20), st.integers(0, 20))
def test_every_kill_is_inside_the_run_in_order(duration: float, brokers: int, ingests: int) -> None:
    plan = kill_plan(duration, brokers, ingests)
    assert [kind for _, kind in plan].count("broker") == brokers
    assert [kind for _, kind in plan].count("ingest") == ingests
    times = [at for at, _ in plan]
    assert times == sorted(times) and all(0 < at < duration for at in times)
