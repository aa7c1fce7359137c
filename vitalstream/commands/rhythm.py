"""``vitalstream rhythm``: rhythm analysis from beat times (CONTRACTS.md)."""

from __future__ import annotations

import typer

rhythm_app = typer.Typer(help="Rhythm analysis from beat times.", no_args_is_help=True)
