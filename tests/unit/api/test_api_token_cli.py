"""``vitalstream token``: prints one JSON object whose token the API accepts."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from ingest_service.api.tokens import decode_token, load_signing_key
from vitalstream.commands.token import token_command

app = typer.Typer()
app.command("token")(token_command)
app.command("other")(lambda: None)  # two commands: typer keeps `token` as a subcommand


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["token", *args])
    return result.exit_code, result.stdout


def test_mints_a_doctor_token_with_contracted_subjects(tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "api.key"
    code, out = _run(
        "--role", "doctor", "--user", "dr-li", "--subject", "p1", "--subject", "p2",
        "--ttl", "600", "--key-file", str(key_file),
    )  # fmt: skip
    assert code == 0, out
    body = json.loads(out)
    assert body["token_type"] == "bearer"
    who = decode_token(load_signing_key(key_file, create=False), body["token"])
    assert (who.user, who.role, who.subjects) == ("dr-li", "doctor", ("p1", "p2"))
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_the_key_file_setting_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key_file = tmp_path / "env.key"
    monkeypatch.setenv("VITALSTREAM_API_KEY_FILE", str(key_file))
    code, out = _run("--role", "admin", "--user", "ops")
    assert code == 0 and key_file.exists()
    assert decode_token(key_file.read_bytes(), json.loads(out)["token"]).role == "admin"


def test_bad_requests_exit_3_with_an_error_object(tmp_path: Path) -> None:
    key = str(tmp_path / "k")
    for args in (
        ("--role", "patient", "--user", "u1"),  # a patient needs their subject
        ("--role", "wizard", "--user", "u1"),
        ("--role", "admin", "--user", "ops", "--ttl", "999999"),  # longer than the maximum
        ("--role", "admin", "--user", "ops", "--subject", "p1"),
    ):
        code, out = _run(*args, "--key-file", key)
        assert code == 3, args
        assert json.loads(out)["error"]["kind"] == "invalid_token"
