"""``vitalstream bench decode``: GATT decode throughput on one core (CONTRACTS.md, bench)."""

from __future__ import annotations

import typer

from firmware_bridge.bench import bench_decode
from vitalstream.output import emit_json

#: Seconds of decoding per run: long enough to average out the shared machine's noise.
DEFAULT_DURATION_S = 5.0


def bench_decode_command(
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Measure BLE GATT notifications decoded per second on one core (pure decode, no I/O).

    Example: vitalstream bench decode --json  ->  {"notifications_per_s": 145000.0, ...}.
    The mix is weighted like a home patient's traffic (HR straps, oximeters, cuffs, CGM).
    """
    result = bench_decode(DEFAULT_DURATION_S)
    if json_output:
        emit_json(result)
        return
    typer.echo(
        f"{result['notifications_per_s']:,.0f} notifications/s "
        f"({result['measurements_per_s']:,.0f} measurements/s) over {result['seconds']:.1f} s"
    )
