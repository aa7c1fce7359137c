"""``vitalstream user`` / ``vitalstream client`` against a real database, then logging in
with what they created (the command groups are tested directly: cli.py wires them)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from test_api_support import ALPHA, api_client, audit_rows
from test_auth_support import login
from typer.testing import CliRunner

from vitalstream.commands.user import client_app, user_app

PASSWORD = "a long clinic password"
runner = CliRunner()


def test_user_and_client_commands(database_url: str, tmp_path: Path) -> None:
    db = ["--database-url", database_url]
    added = runner.invoke(
        user_app,
        ["add", "--username", "dr-li", "--role", "doctor", "--contract", ALPHA,
         "--password-stdin", "--json", *db],
        input=PASSWORD + "\n",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout)["contracted_subjects"] == [ALPHA]
    short = runner.invoke(
        user_app,
        ["add", "--username", "u-2", "--role", "patient", "--subject", ALPHA,
         "--password-stdin", *db],
        input="short\n",
    )  # fmt: skip
    assert short.exit_code == 3 and "invalid_account" in short.stdout
    twice = runner.invoke(
        user_app,
        ["add", "--username", "dr-li", "--role", "er", "--password-stdin", *db],
        input=PASSWORD + "\n",
    )
    assert twice.exit_code == 3
    client = runner.invoke(
        client_app, ["add", "--client-id", "regional-platform", "--scope", "readings", *db]
    )
    assert client.exit_code == 0, client.output
    secret = json.loads(client.stdout)["client_secret"]
    with api_client(database_url, tmp_path) as api:
        assert login(api, "dr-li", PASSWORD).status_code == 200
        basic = base64.b64encode(f"regional-platform:{secret}".encode()).decode()
        granted = api.post(
            "/api/v1/auth/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": f"Basic {basic}"},
        )
        # An old single-word scope is stored under its new name (readings:read).
        assert granted.status_code == 200 and granted.json()["scope"] == "readings:read"
    changed = runner.invoke(
        user_app,
        ["passwd", "--username", "dr-li", "--password-stdin", *db],
        input="another long password\n",
    )
    assert changed.exit_code == 0, changed.output
    disabled = runner.invoke(
        user_app, ["disable", "--username", "dr-li", "--reason", "left the clinic", *db]
    )
    assert disabled.exit_code == 0, disabled.output
    with api_client(database_url, tmp_path) as api:
        assert login(api, "dr-li", PASSWORD).status_code == 400
        refused = login(api, "dr-li", "another long password")
        assert refused.json()["error_description"] == "this account is disabled"
    unknown = runner.invoke(user_app, ["disable", "--username", "nobody", *db])
    assert unknown.exit_code == 3 and "unknown_account" in unknown.stdout
    actions = [r[1] for r in audit_rows(database_url)]
    for action in ("user_add", "client_add", "user_passwd", "account_disable"):
        assert action in actions
    assert PASSWORD not in str(audit_rows(database_url)) and secret not in str(
        audit_rows(database_url)
    )


def test_er_users_get_a_hospital_and_device_clients_a_gateway(database_url: str) -> None:
    db = ["--database-url", database_url]
    er = runner.invoke(
        user_app,
        ["add", "--username", "er-zhao", "--role", "er", "--hospital", "h-ruijin",
         "--password-stdin", "--json", *db],
        input=PASSWORD + "\n",
    )  # fmt: skip
    assert er.exit_code == 0, er.output
    assert json.loads(er.stdout)["hospital"] == "h-ruijin"
    not_er = runner.invoke(
        user_app,
        ["add", "--username", "dr-wu", "--role", "doctor", "--hospital", "h-ruijin",
         "--password-stdin", *db],
        input=PASSWORD + "\n",
    )  # fmt: skip
    assert not_er.exit_code == 3 and "invalid_account" in not_er.stdout
    device = runner.invoke(
        client_app,
        ["add", "--client-id", "amb-12-link", "--role", "device", "--gateway", "amb-12",
         "--scope", "gateways:write", "--scope", "gateways:read", *db],
    )  # fmt: skip
    assert device.exit_code == 0, device.output
    added = json.loads(device.stdout)
    assert (added["role"], added["gateway"], added["scopes"]) == (
        "device",
        "amb-12",
        ["gateways:read", "gateways:write"],
    )
    no_gateway = runner.invoke(client_app, ["add", "--client-id", "x-1", "--role", "device", *db])
    assert no_gateway.exit_code == 3
    bad_scope = runner.invoke(
        client_app, ["add", "--client-id", "x-2", "--scope", "readings:delete", *db]
    )
    assert bad_scope.exit_code == 3 and "unknown scope" in bad_scope.stdout
