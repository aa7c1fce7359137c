"""``vitalstream bench``: speed and memory measured against a ceiling taken in the same run."""

from __future__ import annotations

import typer

from vitalstream.commands.bench_decode import bench_decode_command

bench_app = typer.Typer(
    help="Benchmarks (CONTRACTS.md). Each prints what it measured; --json gives one object. "
    "Results with machine and date belong in docs/benchmarks.md.",
    no_args_is_help=True,
)
bench_app.command("decode")(bench_decode_command)
