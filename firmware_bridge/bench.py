"""Decode throughput: notifications per second through ``decode_characteristic`` on one core.

The mix is weighted like a gateway's traffic (heart-rate straps notify every second, oximeters
continuously, cuffs/thermometers/scales rarely) and uses the published vectors of the unit
tests (Nordic Android-BLE-Common-Library tests, Bluetooth SIG spec layouts); see
docs/decoders-gatt.md. The loop measures only decoding: no I/O, no Reading validation.
"""

from __future__ import annotations

import os
import platform
import time
from datetime import UTC, datetime
from typing import Final

from firmware_bridge.gatt import decode_characteristic

#: (uuid16, value hex, weight). Weights ~ notifications per minute of a typical home patient.
MIX: Final[tuple[tuple[int, str, int], ...]] = (
    (0x2A37, "0055", 30),  # HR uint8 (Nordic HRS test "simple")
    (0x2A37, "1e5532002100", 20),  # HR + energy + 1 RR (Nordic HRS test "uint8")
    (0x2A37, "1f0101320101000201ffff", 5),  # HR uint16 + 3 RR (Nordic HRS test "uint16")
    (0x2A5F, "0062004800", 20),  # PLX continuous SpO2 98 %, PR 72 (built from PLXS 3.2)
    (0x2A35, "1e8a00580078000000041114293b3c00012700", 2),  # BPM full (Nordic BPS test)
    (0x2A35, "15bdf00b009ff03c001200", 2),  # BPM kPa (Nordic BPS test)
    (0x2A1C, "06b00e00fedc070c050b321b04", 2),  # HTM (Nordic HTS test)
    (0x2AA7, "0fe3d2e405000214ff02f0e5f38e3f", 5),  # CGM record with CRC (Nordic CGMS test)
    (0x2A18, "1b0100e307021b0b0a1efbff1e00120501", 1),  # glucose (Nordic GLS test)
    (0x2A9D, "0e6c38e4070c1e0a1e0001f000b206", 1),  # weight (built from WSS 3.1)
)

_SESSION_START: Final = datetime(2024, 1, 1, tzinfo=UTC)


def _workload() -> list[tuple[int, bytes]]:
    items: list[tuple[int, bytes]] = []
    for uuid, hex_value, weight in MIX:
        items.extend([(uuid, bytes.fromhex(hex_value))] * weight)
    # Interleave so the loop does not run one characteristic at a time (branch-friendly).
    return items[::2] + items[1::2]


def bench_decode(duration_s: float) -> dict[str, object]:
    """Decode the mix repeatedly for about ``duration_s`` seconds; report notifications/s.

    Single-threaded (one core by construction). Returns ``notifications_per_s``,
    ``notifications``, ``measurements``, ``seconds``, and the machine/Python it ran on.
    """
    items = _workload()
    decode = decode_characteristic
    start_time = _SESSION_START
    notifications = 0
    measurements = 0
    began = time.perf_counter()
    deadline = began + duration_s
    while True:
        for uuid, data in items:
            result = (
                decode(uuid, data, session_start=start_time)
                if uuid == 0x2AA7
                else decode(uuid, data)
            )
            measurements += len(result.measurements)
        notifications += len(items)
        now = time.perf_counter()
        if now >= deadline:
            break
    elapsed = now - began
    return {
        "notifications_per_s": notifications / elapsed,
        "measurements_per_s": measurements / elapsed,
        "notifications": notifications,
        "measurements": measurements,
        "seconds": elapsed,
        "mix": len(MIX),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }
