"""``vitalstream edge``: run a gateway's agent from its config file, or inspect its outbox.

``edge run`` wires configured sources into an :class:`edge_agent.EdgeAgent` and runs until
SIGTERM/SIGINT. ``edge status`` reads the outbox file directly (SQLite, read-only), so a field
engineer can see what a gateway still holds while the broker or the agent itself is down.
``edge push-config`` publishes a retained :class:`vitals.GatewayConfig` (the down-link).
"""

from __future__ import annotations

import json
import signal
import sqlite3
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer

from edge_agent import AgentSettings, EdgeAgent
from edge_agent.ambulance import AmbulanceTracker
from edge_agent.config import (
    ConfigError,
    RunningSource,
    load_config,
    open_ambulance,
    open_source,
)
from edge_agent.downlink import read_config_file
from edge_agent.outbox import LANE_PRIORITY
from ingest_service.sealing import PayloadOpener, key_dir_of
from ingest_service.settings import IngestSettings
from vitals import (
    GatewayConfig,
    GatewayStatus,
    PayloadError,
    VitalsError,
    decode,
    encode,
    gateway_topic,
    parse_broker_url,
)
from vitalstream.output import EXIT_FAILURE, configure_logging, console, emit_json, reject

edge_app = typer.Typer(
    help="The edge gateway agent: sources (BLE, HL7/MLLP, replay, simulator) -> outbox -> MQTT.",
    no_args_is_help=True,
)

ConfigOption = Annotated[
    Path,
    typer.Option("--config", help="The gateway's TOML file (docs/edge.md, docs/examples/)."),
]


@edge_app.command("run")
def run_command(config: ConfigOption) -> None:
    """Run the agent with the configured sources until SIGTERM/SIGINT.

    On a signal the sources stop first (the HL7 listener closes, BLE disconnects), the agent
    sends what it can for ``drain_on_stop_s`` seconds, and exits; whatever is unconfirmed stays
    in the outbox for the next start. Example: vitalstream edge run --config edge-home.toml
    """
    try:
        settings = load_config(config)
        broker = parse_broker_url(settings.broker_url)
    except VitalsError as error:
        reject(error)
    configure_logging(settings.log_level)
    stop = threading.Event()

    def _graceful(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _graceful)
    signal.signal(signal.SIGINT, _graceful)

    sources: list[RunningSource] = []
    ambulance: AmbulanceTracker | None = None
    try:
        now = datetime.now(UTC)
        if settings.ambulance is not None:
            ambulance = open_ambulance(settings.ambulance, now)
        for source in settings.sources:
            sources.append(
                open_source(source, settings.gateway, now, state_dir=settings.outbox.parent)
            )
    except (VitalsError, OSError) as error:
        for opened in sources:
            opened.close()
        if isinstance(error, VitalsError):
            reject(error)
        reject(ConfigError(f"cannot start a source: {error}", kind="source_failed"))

    agent = EdgeAgent(
        settings.gateway,
        settings.outbox,
        broker,
        prefix=settings.topic_prefix,
        sources=sources,
        tls=settings.link_tls(),
        sealing=settings.link_sealing(),
        local_alarms=settings.alarm_settings(),
        settings=AgentSettings(
            max_outbox_rows=settings.max_outbox_rows,
            backfill_after_s=settings.backfill_after_s,
            status_interval_s=(
                settings.ambulance.status_interval_s
                if settings.ambulance
                else AgentSettings().status_interval_s
            ),
        ),
        ambulance=ambulance,
    )
    failed = threading.Event()

    def _run() -> None:
        try:
            agent.run()
        except Exception:
            failed.set()  # agent.run already logged it
            stop.set()

    runner = threading.Thread(target=_run, name=f"edge-{settings.gateway}", daemon=True)
    runner.start()
    console.print(
        f"edge agent {settings.gateway}: {len(sources)} source(s), outbox {settings.outbox}, "
        f"broker {broker.url}; SIGTERM/Ctrl-C to stop"
    )
    while not stop.wait(0.5):
        pass
    for opened in sources:
        opened.close()
    time.sleep(0.2)  # one more agent turn takes what the closing sources handed over
    agent.stop_sources()
    deadline = time.monotonic() + settings.drain_on_stop_s
    while not failed.is_set() and agent.depth and time.monotonic() < deadline:
        time.sleep(0.1)
    agent.stop()
    runner.join(15)
    console.print(
        f"edge agent {settings.gateway} stopped: accepted {agent.counters.accepted}, "
        f"confirmed {agent.counters.confirmed}, {agent.depth} kept in the outbox"
    )
    if failed.is_set():
        raise typer.Exit(EXIT_FAILURE)


@edge_app.command("status")
def status_command(
    config: Annotated[
        Path | None, typer.Option("--config", help="Take the outbox path from this file.")
    ] = None,
    outbox: Annotated[Path | None, typer.Option("--outbox", help="The outbox file.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """What the outbox holds: readings per lane, awaiting ack, oldest unconfirmed age.

    Reads the SQLite file read-only; needs neither the broker nor a running agent.
    Example: vitalstream edge status --config edge-home.toml --json
    """
    try:
        if outbox is None:
            if config is None:
                raise ConfigError("give --config FILE or --outbox FILE", kind="usage")
            outbox = load_config(config).outbox
        report = outbox_status(outbox, datetime.now(UTC))
    except VitalsError as error:
        reject(error)
    if json_output:
        emit_json(report)
        return
    lanes = ", ".join(f"{lane} {count}" for lane, count in report["lanes"].items())
    age = report["oldest_unconfirmed_age_s"]
    console.print(f"outbox {report['outbox']}: {report['depth']} reading(s) ({lanes})")
    console.print(
        f"awaiting ack: {report['awaiting_ack']}; oldest unconfirmed: "
        + (f"{age:.0f} s old" if age is not None else "none")
    )
    dropped = report["dropped"]
    if dropped:
        console.print(
            "dropped by the overflow policy: "
            + "; ".join(
                f"{lane} " + ", ".join(f"{device} {n}" for device, n in devices.items())
                for lane, devices in dropped.items()
            )
        )


def outbox_status(path: Path, now: datetime) -> dict[str, Any]:
    """Queue depth per lane and the age of the oldest unconfirmed reading (read-only).

    Age = ``now`` minus the measurement time of the oldest row (by insertion) in any lane.
    """
    if not path.is_file():
        raise VitalsError(f"no outbox at {path}", kind="not_found")
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise VitalsError(f"cannot open outbox {path}: {exc}", kind="not_found") from None
    try:
        counts = dict(db.execute("SELECT lane, count(*) FROM outbox GROUP BY lane").fetchall())
        columns = {str(row[1]) for row in db.execute("PRAGMA table_info(outbox)")}
        events = (
            db.execute("SELECT count(*) FROM outbox WHERE kind = 'event'").fetchone()[0]
            if "kind" in columns  # an outbox written before events existed has no `kind`
            else 0
        )
        awaiting = db.execute("SELECT count(*) FROM outbox WHERE attempts > 0").fetchone()[0]
        oldest: datetime | None = None
        for (payload,) in db.execute(
            "SELECT payload FROM outbox WHERE id IN (SELECT min(id) FROM outbox GROUP BY lane)"
        ):
            moment = datetime.fromisoformat(json.loads(bytes(payload))["time"])
            oldest = moment if oldest is None or moment < oldest else oldest
        devices = dict(db.execute("SELECT device, last_seq FROM device_seq").fetchall())
        tables = {str(row[0]) for row in db.execute("SELECT name FROM sqlite_master")}
        # An outbox written before the overflow policy existed has no drop tables: none dropped.
        drops = (
            db.execute(
                "SELECT lane, device, count FROM outbox_drops ORDER BY lane, device"
            ).fetchall()
            if "outbox_drops" in tables
            else []
        )
        dropped_readings = (
            db.execute(
                "SELECT device, metric, first_time, last_time, count FROM outbox_dropped "
                "ORDER BY device, metric"
            ).fetchall()
            if "outbox_dropped" in tables
            else []
        )
    except sqlite3.Error as exc:
        raise VitalsError(f"{path} is not an edge outbox: {exc}", kind="malformed") from None
    finally:
        db.close()
    lanes = {lane: int(counts.get(priority, 0)) for lane, priority in LANE_PRIORITY.items()}
    return {
        "outbox": str(path),
        "depth": sum(lanes.values()),
        "lanes": lanes,
        "awaiting_ack": int(awaiting),
        "oldest_unconfirmed_time": oldest.isoformat() if oldest else None,
        "oldest_unconfirmed_age_s": (now - oldest).total_seconds() if oldest else None,
        "devices_last_seq": {str(k): int(v) for k, v in devices.items()},
        "events": int(events),
        "dropped": _dropped_by_lane(drops),
        "dropped_readings": [
            {
                "device": str(device),
                "metric": str(metric),
                "first_time": str(first),
                "last_time": str(last),
                "count": int(count),
            }
            for device, metric, first, last, count in dropped_readings
        ],
    }


def _dropped_by_lane(rows: list[tuple[Any, ...]]) -> dict[str, dict[str, int]]:
    """``{"backfill": {"dev-1": 12}}``: what the overflow policy dropped, per lane and device."""
    out: dict[str, dict[str, int]] = {}
    for lane, device, count in rows:
        out.setdefault(str(lane), {})[str(device)] = int(count)
    return out


@edge_app.command("push-config")
def push_config_command(
    gateway: Annotated[str, typer.Option("--gateway", help="The gateway to configure.")],
    file: Annotated[
        Path,
        typer.Option(
            "--file",
            help="GatewayConfig as TOML or JSON: version, devices, thresholds, cadence_s "
            "(docs/edge.md). gateway and issued_at are filled in when missing.",
        ),
    ],
    broker_url: Annotated[
        str | None,
        typer.Option(
            "--broker-url", help="Default: VITALSTREAM_BROKER_URL (the ingest's settings)."
        ),
    ] = None,
    topic_prefix: Annotated[
        str | None, typer.Option("--topic-prefix", help="Default: VITALSTREAM_TOPIC_PREFIX.")
    ] = None,
    tls_ca_file: Annotated[
        Path | None, typer.Option("--tls-ca-file", help="Default: VITALSTREAM_TLS_CA_FILE.")
    ] = None,
    tls_cert_file: Annotated[
        Path | None,
        typer.Option(
            "--tls-cert-file",
            help="A client certificate the broker ACL lets write config (the ingest identity). "
            "Default: VITALSTREAM_TLS_CERT_FILE.",
        ),
    ] = None,
    tls_key_file: Annotated[
        Path | None, typer.Option("--tls-key-file", help="Default: VITALSTREAM_TLS_KEY_FILE.")
    ] = None,
    wait_s: Annotated[
        float,
        typer.Option(
            "--wait",
            min=0,
            help="Seconds to wait for the gateway's acknowledgement (config_version on its "
            "retained status); 0 = do not wait.",
        ),
    ] = 0.0,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Publish a gateway's configuration (retained, QoS 1) on vs/v1/gw/<id>/config.

    The gateway applies it whole or not at all when its version is newer than the one in
    force, and acknowledges with config_version on its status (config_error if refused).
    Example: vitalstream edge push-config --gateway home-0001 --file home-0001.toml --wait 30
    """
    defaults = IngestSettings()
    try:
        config = read_config_file(file, gateway, datetime.now(UTC))
        broker = parse_broker_url(broker_url or defaults.broker_url)
    except VitalsError as error:
        reject(error)
    prefix = topic_prefix or defaults.topic_prefix
    tls = (
        tls_ca_file or _path(defaults.tls_ca_file),
        tls_cert_file or _path(defaults.tls_cert_file),
        tls_key_file or _path(defaults.tls_key_file),
    )
    try:
        # The gateway's status may be SM4-sealed: open it with the platform's keys.
        opener = PayloadOpener(defaults.sealing_policy, key_dir_of(defaults), prefix=prefix)
        acknowledged = _push(
            config, broker.host, broker.port, broker.tls, tls, prefix, wait_s, opener
        )
    except (OSError, VitalsError) as error:
        detail = error.detail if isinstance(error, VitalsError) else str(error)
        reject(VitalsError(f"cannot publish to {broker.url}: {detail}", kind="broker_unreachable"))
    refused = acknowledged if isinstance(acknowledged, str) else None
    report = {
        "gateway": gateway,
        "version": config.version,
        "topic": gateway_topic(gateway, "config", prefix),
        "acknowledged": acknowledged is True,
        "config_error": refused,
    }
    if json_output:
        emit_json(report)
    else:
        console.print(
            f"config version {config.version} published (retained) on {report['topic']}"
            + ("; acknowledged by the gateway" if acknowledged is True else "")
            + (f"; REFUSED: {refused}" if refused else "")
        )
    if wait_s and acknowledged is not True:
        raise typer.Exit(EXIT_FAILURE)


def _path(text: str | None) -> Path | None:
    return Path(text) if text else None


def _push(
    config: GatewayConfig,
    host: str,
    port: int,
    use_tls: bool,
    tls: tuple[Path | None, Path | None, Path | None],
    prefix: str,
    wait_s: float,
    opener: PayloadOpener,
) -> bool | str:
    """Publish retained; with ``wait_s``, watch the gateway's status for the acknowledgement.

    Returns True (acknowledged), False (not within ``wait_s``, or not asked), or the
    gateway's ``config_error`` when it refused this version. A sealed status is opened with
    the ingest's SM4 keys (``VITALSTREAM_SEALING_*``), so the acknowledgement is seen from a
    gateway that seals too.
    """
    import paho.mqtt.client as mqtt  # noqa: PLC0415 - only this command needs a client
    from paho.mqtt.enums import CallbackAPIVersion  # noqa: PLC0415

    outcome: list[bool | str] = []
    done = threading.Event()
    status_topic = gateway_topic(config.gateway, "status", prefix)

    def on_message(_c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        try:
            status = decode(opener.open(message.topic, bytes(message.payload)), GatewayStatus)
        except PayloadError:
            return
        if status.config_version is not None and status.config_version >= config.version:
            outcome.append(True)
            done.set()
        elif status.config_error and f"version {config.version}" in status.config_error:
            outcome.append(status.config_error)
            done.set()

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"push-config-{uuid.uuid4().hex[:12]}",
        clean_session=True,
        protocol=mqtt.MQTTv311,
    )
    if use_tls:
        ca, cert, key = tls
        client.tls_set(
            ca_certs=str(ca) if ca else None,
            certfile=str(cert) if cert else None,
            keyfile=str(key) if key else None,
        )
    client.on_message = on_message
    client.connect(host, port, keepalive=20)
    client.loop_start()
    try:
        if wait_s:
            client.subscribe(status_topic, qos=1)
        info = client.publish(
            gateway_topic(config.gateway, "config", prefix), encode(config), qos=1, retain=True
        )
        info.wait_for_publish(10)
        if not info.is_published():
            raise VitalsError("the broker did not acknowledge the publish within 10 s")
        if wait_s:
            done.wait(wait_s)
    finally:
        client.disconnect()
        client.loop_stop()
    return outcome[0] if outcome else False
