"""CLI output conventions shared by every command (CONTRACTS.md).

- ``--json``: exactly one JSON object on stdout; progress and logs go to stderr.
- Exit codes: 0 ok; 2 usage error (typer's own); 3 input rejected, with
  ``{"error": {"kind", "detail"}}`` on stdout; 1 anything else.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from vitals import VitalsError

#: Human output and progress: always stderr, so stdout stays one JSON object.
console = Console(stderr=True)

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_REJECTED = 3


def emit_json(payload: dict[str, Any]) -> None:
    """Write the one JSON object of a ``--json`` command to stdout."""
    sys.stdout.write(json.dumps(payload, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


def reject(error: VitalsError) -> NoReturn:
    """Exit 3 with the contract's error object on stdout and a readable line on stderr."""
    emit_json({"error": error.as_dict()})
    console.print(f"[red]rejected[/red] ({error.kind}): {error.detail}")
    raise typer.Exit(EXIT_REJECTED)


def configure_logging(level: str = "INFO") -> None:
    """Structured-ish logs on stderr: ``time level logger: message`` (never patient ids)."""
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@contextmanager
def pipeline_progress(label: str) -> Iterator[Callable[[float, int, int], None]]:
    """A progress bar on stderr for a pipeline run; yields ``update(fraction, accepted,
    confirmed)`` (readings accepted at the edge and confirmed by ingest)."""
    with Progress(
        TextColumn(f"[bold]{label}[/bold]"),
        BarColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("starting services", total=1.0)

        def update(fraction: float, accepted: int, confirmed: int) -> None:
            bar.update(
                task,
                completed=fraction,
                description=f"{accepted} accepted at the edge, {confirmed} confirmed",
            )

        yield update
