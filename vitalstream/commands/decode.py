"""``vitalstream decode``: device bytes -> readings (CONTRACTS.md). Filled by the decoder work."""

from __future__ import annotations

import typer

decode_app = typer.Typer(
    help="Decode device bytes (BLE GATT values, IEEE 11073 numbers, HL7 v2 messages) into "
    "catalogue readings, exactly as the edge agent does.",
    no_args_is_help=True,
)
