"""The SM4 payload layer around the cipher: key store, the ingest's opener, the edge's sealer.

Keys are generated at test time into tmp_path; none is committed.
"""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from edge_agent.config import ConfigError, parse_config
from edge_agent.link import LinkSealing, PayloadSealer
from ingest_service.sealing import SEALED_REQUIRED, PayloadOpener, SealingPolicy
from ingest_service.settings import IngestSettings
from ingest_service.validate import RejectedMessage
from vitals import BatchAck, encode, gateway_topic
from vitals.errors import PayloadError
from vitals.sealed import (
    KEY_BYTES,
    SEALED_INVALID,
    SealedKeyError,
    SealKeyStore,
    gateway_key_id,
    is_sealed,
    parse_gateway_key_id,
    parse_header,
    seal,
)
from vitalstream.commands.pki import pki_app

PREFIX = "vs"
CLEAR = b'{"schema_version":1,"gateway":"gw-a","readings":[]}'


def topic(gateway: str, kind: str = "readings") -> str:
    return gateway_topic(gateway, kind, PREFIX)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- key ids and store


def test_key_ids_name_their_gateway_and_version() -> None:
    assert gateway_key_id("gw-0042", 2) == "gw-0042.k2"
    assert parse_gateway_key_id("gw-0042.k2") == ("gw-0042", 2)
    # A gateway id may itself contain ".k<digits>": the last one is the version.
    assert parse_gateway_key_id("site.k9.k3") == ("site.k9", 3)
    for bad in ("gw-0042", "gw-0042.k0", "gw-0042.kx", ".k1", "gw/1.k1"):
        assert parse_gateway_key_id(bad) is None
    with pytest.raises(ValueError, match="key id"):
        gateway_key_id("g" * 63, 1)  # 63 + ".k1" > 64 characters


def test_is_sealed_never_mistakes_json() -> None:
    assert not is_sealed(b"")
    assert not is_sealed(CLEAR)
    assert not is_sealed(b" \n{}")
    assert is_sealed(seal(CLEAR, bytes(KEY_BYTES), "gw-a.k1", topic("gw-a")))


def test_store_creates_versions_with_safe_modes_and_keeps_old_ones(tmp_path: Path) -> None:
    store = SealKeyStore(tmp_path / "keys")
    first_id, first = store.create("gw-a")
    second_id, second = store.create("gw-a")
    store.create("gw-b")
    assert (first_id, second_id) == ("gw-a.k1", "gw-a.k2")
    assert first != second and len(first) == KEY_BYTES
    assert store.versions("gw-a") == [1, 2]
    assert store.current("gw-a") == ("gw-a.k2", second)
    assert store.keys("gw-a") == {"gw-a.k1": first, "gw-a.k2": second}
    assert set(store.keys()) == {"gw-a.k1", "gw-a.k2", "gw-b.k1"}
    assert stat.S_IMODE(store.directory.stat().st_mode) == 0o700
    for path in store.directory.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert path.read_bytes() in (first, second, store.get("gw-b.k1"))


def test_store_refuses_readable_truncated_and_missing_keys(tmp_path: Path) -> None:
    store = SealKeyStore(tmp_path)
    key_id, _key = store.create("gw-a")
    store.path(key_id).chmod(0o640)
    with pytest.raises(SealedKeyError, match="chmod 600"):
        store.get(key_id)
    store.path(key_id).chmod(0o600)
    store.path(key_id).write_bytes(b"short")
    with pytest.raises(SealedKeyError, match="5 bytes"):
        store.get(key_id)
    with pytest.raises(SealedKeyError) as caught:
        store.current("gw-none")
    assert caught.value.kind == "unknown_key"


def test_install_copies_and_never_replaces_a_key(tmp_path: Path) -> None:
    source = SealKeyStore(tmp_path / "ingest")
    key_id, key = source.create("gw-a")
    copy = SealKeyStore(tmp_path / "gateway")
    copy.install(key_id, key)
    copy.install(key_id, key)  # the same key again: fine
    assert copy.get(key_id) == key
    with pytest.raises(SealedKeyError) as caught:
        copy.install(key_id, bytes(KEY_BYTES))
    assert caught.value.kind == "key_exists"


# --------------------------------------------------------------------------- the ingest opener


def _opener(tmp_path: Path, policy: SealingPolicy) -> tuple[PayloadOpener, SealKeyStore]:
    store = SealKeyStore(tmp_path / "sm4")
    settings = IngestSettings(
        sealing_policy=policy,
        sealing_key_dir=store.directory,
        topic_prefix=PREFIX,
    )
    return PayloadOpener.from_settings(settings), store


def _kind(opener: PayloadOpener, where: str, payload: bytes) -> str:
    with pytest.raises(PayloadError) as caught:
        opener.open(where, payload)
    return caught.value.kind


def test_required_policy_opens_sealed_and_refuses_clear(tmp_path: Path) -> None:
    opener, store = _opener(tmp_path, "required")
    key_id, key = store.create("gw-a")
    where = topic("gw-a")
    assert opener.open(where, seal(CLEAR, key, key_id, where)) == CLEAR
    assert _kind(opener, where, CLEAR) == SEALED_REQUIRED
    assert opener.open(where, b"") == b""  # a cleared retained status carries nothing
    assert opener.counters.opened == 1 and opener.counters.refused == 1


def test_optional_policy_passes_clear_and_opens_sealed(tmp_path: Path) -> None:
    opener, store = _opener(tmp_path, "optional")
    key_id, key = store.create("gw-a")
    where = topic("gw-a", "status")
    assert opener.open(where, CLEAR) == CLEAR
    assert opener.open(where, seal(CLEAR, key, key_id, where)) == CLEAR


def test_off_policy_passes_clear_and_names_a_sealed_payload(tmp_path: Path) -> None:
    opener, store = _opener(tmp_path, "off")
    key_id, key = store.create("gw-a")
    where = topic("gw-a")
    assert opener.open(where, CLEAR) is CLEAR
    with pytest.raises(PayloadError) as caught:
        opener.open(where, seal(CLEAR, key, key_id, where))
    assert caught.value.kind == SEALED_INVALID
    assert "sealing is off" in caught.value.detail
    assert opener.seal_for("gw-a", topic("gw-a", "ack"), b"{}") == b"{}"


def test_tampered_foreign_and_unknown_keys_are_sealed_invalid(tmp_path: Path) -> None:
    opener, store = _opener(tmp_path, "required")
    a_id, a_key = store.create("gw-a")
    b_id, b_key = store.create("gw-b")
    where = topic("gw-a")
    tampered = bytearray(seal(CLEAR, a_key, a_id, where))
    tampered[-1] ^= 0x80
    assert _kind(opener, where, bytes(tampered)) == SEALED_INVALID
    # gateway B's (valid) key used on gateway A's topic: refused before any decryption.
    assert _kind(opener, where, seal(CLEAR, b_key, b_id, where)) == SEALED_INVALID
    # a key id nobody made
    assert _kind(opener, where, seal(CLEAR, a_key, "gw-a.k7", where)) == SEALED_INVALID
    # sealed for the status topic, replayed on the readings topic
    status = topic("gw-a", "status")
    assert _kind(opener, where, seal(CLEAR, a_key, a_id, status)) == SEALED_INVALID
    assert opener.counters.opened == 0


def test_a_rotated_key_is_picked_up_without_a_restart(tmp_path: Path) -> None:
    opener, store = _opener(tmp_path, "required")
    old_id, old_key = store.create("gw-a")
    where = topic("gw-a")
    assert opener.open(where, seal(CLEAR, old_key, old_id, where)) == CLEAR
    new_id, new_key = store.create("gw-a")  # rotation after the opener read the keys
    assert opener.open(where, seal(CLEAR, new_key, new_id, where)) == CLEAR
    # ... and what the outbox sealed under the old key before the rotation still opens.
    assert opener.open(where, seal(CLEAR, old_key, old_id, where)) == CLEAR


def test_rejection_is_a_dead_letter_of_the_raw_bytes(tmp_path: Path) -> None:
    opener, _store = _opener(tmp_path, "required")
    where = topic("gw-a")
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(PayloadError) as caught:
        opener.open(where, CLEAR)
    delivery = opener.rejection(where, CLEAR, now, caught.value)
    assert delivery.payload == CLEAR and delivery.topic == where
    assert delivery.outcome == RejectedMessage("gw-a", SEALED_REQUIRED, caught.value.detail)


def test_acks_are_sealed_with_the_key_the_gateway_used(tmp_path: Path) -> None:
    opener, store = _opener(tmp_path, "optional")
    k1_id, k1 = store.create("gw-a")
    k2_id, _k2 = store.create("gw-a")
    readings, ack_topic = topic("gw-a"), topic("gw-a", "ack")
    ack = encode(BatchAck(batch_ids=("b1",), committed_at=datetime(2026, 1, 1, tzinfo=UTC)))
    # Nothing heard yet (optional): clear.
    assert opener.seal_for("gw-a", ack_topic, ack) == ack
    # The gateway still seals with k1 (not rotated yet): the ack uses k1, not the newest k2.
    opener.open(readings, seal(CLEAR, k1, k1_id, readings))
    sealed = opener.seal_for("gw-a", ack_topic, ack)
    assert parse_header(sealed).key_id == k1_id
    gateway = PayloadSealer("gw-a", store.directory)
    assert gateway.open(ack_topic, sealed) == ack
    # A gateway that went back to clear payloads gets clear acks.
    opener.open(readings, CLEAR)
    assert opener.seal_for("gw-a", ack_topic, ack) == ack
    assert k2_id == "gw-a.k2"


def test_required_policy_seals_acks_with_the_newest_key_after_a_restart(tmp_path: Path) -> None:
    opener, store = _opener(tmp_path, "required")
    store.create("gw-a")
    newest, _key = store.create("gw-a")
    sealed = opener.seal_for("gw-a", topic("gw-a", "ack"), b"{}")
    assert parse_header(sealed).key_id == newest
    # No key at all for that gateway: a clear ack rather than a crash of the ingest loop.
    assert opener.seal_for("gw-none", topic("gw-none", "ack"), b"{}") == b"{}"


# --------------------------------------------------------------------------- the edge sealer


def test_gateway_sealer_uses_the_newest_key_and_follows_a_rotation(tmp_path: Path) -> None:
    store = SealKeyStore(tmp_path / "gw")
    store.create("gw-a")
    sealer = PayloadSealer("gw-a", store.directory)
    where = topic("gw-a")
    first = sealer.seal(where, CLEAR)
    assert parse_header(first).key_id == "gw-a.k1"
    store.create("gw-a")
    second = sealer.seal(where, CLEAR)
    assert parse_header(second).key_id == "gw-a.k2" == sealer.key_id
    assert sealer.open(where, second) == CLEAR
    assert sealer.open(where, CLEAR) == CLEAR  # clear downlink passes
    with pytest.raises(PayloadError):
        sealer.open(topic("gw-b"), second)


def test_gateway_sealer_without_a_key_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(SealedKeyError):
        PayloadSealer("gw-a", tmp_path / "empty")


def test_edge_config_sealing_is_off_by_default_and_checked_when_on(tmp_path: Path) -> None:
    base = 'gateway = "gw-a"\n'
    assert parse_config(base, tmp_path).link_sealing() is None
    config = parse_config(base + "seal_payloads = true\n", tmp_path)
    assert config.seal_key_dir == tmp_path / "sm4-keys"
    with pytest.raises(ConfigError, match="seal_payloads"):
        config.link_sealing()
    SealKeyStore(tmp_path / "sm4-keys").create("gw-a")
    assert config.link_sealing() == LinkSealing(tmp_path / "sm4-keys")
    custom = parse_config(base + 'seal_payloads = true\nseal_key_dir = "k"\n', tmp_path)
    assert custom.seal_key_dir == tmp_path / "k"


# --------------------------------------------------------------------------- the CLI


def _app() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(pki_app, name="pki")

    @app.callback()
    def _root() -> None:
        """Test root."""

    return app


def test_pki_sm4_key_makes_rotates_and_copies_keys(tmp_path: Path) -> None:
    runner = CliRunner()
    app = _app()
    ingest_keys, gateway_keys = tmp_path / "ingest", tmp_path / "gw-a" / "sm4-keys"

    def run(*args: str) -> dict[str, object]:
        result = runner.invoke(app, ["pki", "sm4-key", "--key-dir", str(ingest_keys), *args])
        assert result.exit_code == 0, result.output
        payload: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
        return payload

    first = run("--gateway", "gw-a", "--out", str(gateway_keys), "--json")
    assert first["key_id"] == "gw-a.k1" and first["created"] is True
    again = run("--gateway", "gw-a", "--json")
    assert again["key_id"] == "gw-a.k1" and again["created"] is False
    rotated = run("--gateway", "gw-a", "--rotate", "--out", str(gateway_keys), "--json")
    assert rotated["key_id"] == "gw-a.k2"
    assert rotated["key_ids"] == ["gw-a.k1", "gw-a.k2"]
    ingest_store, gateway_store = SealKeyStore(ingest_keys), SealKeyStore(gateway_keys)
    assert gateway_store.keys("gw-a") == ingest_store.keys("gw-a")
    key = ingest_store.get("gw-a.k2")
    result = runner.invoke(
        app, ["pki", "sm4-key", "--key-dir", str(ingest_keys), "--gateway", "gw-a", "--json"]
    )
    assert key.hex() not in result.output  # ids only, never key material
    bad = runner.invoke(
        app, ["pki", "sm4-key", "--key-dir", str(ingest_keys), "--gateway", "gw/1", "--json"]
    )
    assert bad.exit_code == 3
    assert json.loads(bad.stdout.splitlines()[0])["error"]["kind"] == "invalid_gateway"


def test_pki_issue_with_sm4_key(tmp_path: Path) -> None:
    runner = CliRunner()
    app = _app()
    ca_dir, out, keys = tmp_path / "ca", tmp_path / "gw-b", tmp_path / "keys"
    assert runner.invoke(app, ["pki", "init-ca", "--out", str(ca_dir)]).exit_code == 0
    result = runner.invoke(
        app,
        [
            "pki",
            "issue",
            "--ca-dir",
            str(ca_dir),
            "--gateway",
            "gw-b",
            "--out",
            str(out),
            "--sm4-key",
            "--key-dir",
            str(keys),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert payload["sm4"]["key_id"] == "gw-b.k1"
    assert SealKeyStore(out / "sm4-keys").keys() == SealKeyStore(keys).keys("gw-b")
