"""The ``vitalstream`` command line. Each command group lives in ``vitalstream.commands``."""

from __future__ import annotations

import typer

import vitalstream.commands.decode_hl7  # noqa: F401 - registers `decode hl7` on decode_app
from vitalstream import __version__
from vitalstream.commands.audit import audit_app
from vitalstream.commands.backtest import backtest_command
from vitalstream.commands.bench import bench_app
from vitalstream.commands.card import card_app
from vitalstream.commands.chaos import chaos_command
from vitalstream.commands.config import config_command
from vitalstream.commands.deadletters import deadletters_app
from vitalstream.commands.decode import decode_app
from vitalstream.commands.demo import demo_command
from vitalstream.commands.device import device_app
from vitalstream.commands.edge import edge_app
from vitalstream.commands.enrol import enrol_command
from vitalstream.commands.handoff import handoff_app
from vitalstream.commands.incident import incident_app
from vitalstream.commands.ingest import ingest_app
from vitalstream.commands.pki import pki_app
from vitalstream.commands.rhythm import rhythm_app
from vitalstream.commands.security import security_app
from vitalstream.commands.serve import serve_command
from vitalstream.commands.subject import subject_app
from vitalstream.commands.token import token_command
from vitalstream.commands.user import client_app, user_app

app = typer.Typer(
    name="vitalstream",
    help=(
        "vitalstream: vital signs from BLE wearables and bedside/ambulance monitors, over MQTT, "
        "into PostgreSQL/TimescaleDB, with clinical rules.\n\n"
        "Start with `vitalstream demo`: it starts whatever is missing (database, broker), runs "
        "simulated home patients and an ambulance through the real pipeline, and prints a "
        "summary. NOT a cleared medical device."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"vitalstream {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Root options."""


app.command("demo")(demo_command)
app.command("chaos")(chaos_command)
app.command("backtest")(backtest_command)
app.add_typer(decode_app, name="decode")
app.add_typer(rhythm_app, name="rhythm")
app.add_typer(ingest_app, name="ingest")
app.add_typer(deadletters_app, name="deadletters")
app.add_typer(device_app, name="device")
app.add_typer(edge_app, name="edge")
app.add_typer(bench_app, name="bench")
app.command("enrol")(enrol_command)
app.add_typer(audit_app, name="audit")
app.add_typer(pki_app, name="pki")
app.add_typer(handoff_app, name="handoff")
app.add_typer(incident_app, name="incident")
app.command("serve")(serve_command)
app.command("token")(token_command)
app.command("config")(config_command)
app.add_typer(subject_app, name="subject")
app.add_typer(card_app, name="card")
app.add_typer(security_app, name="security")
app.add_typer(user_app, name="user")
app.add_typer(client_app, name="client")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
