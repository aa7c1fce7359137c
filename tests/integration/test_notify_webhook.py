"""The notifier in a real ingest service: MQTT readings -> alert -> apprise json:// webhook.

The webhook is a real HTTP server on 127.0.0.1 (a free port); apprise posts to it. A second
test points the notifier at a port where nothing listens: the notice is retried, recorded as
failed, and ingestion goes on undisturbed.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import pytest
from integration_support import count, free_port, publish_raw, wait_for

from ingest_service import IngestService, IngestSettings
from vitals import Batch, BrokerAddress, Reading, encode, gateway_topic

NOW = datetime.now(UTC).replace(microsecond=0)
PLANTED_ID = "11010519491231002X"


class Webhook:
    """A local HTTP server that keeps every JSON body posted to it."""

    def __init__(self) -> None:
        self.posts: list[dict[str, object]] = []
        self.paths: list[str] = []
        received = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                received.posts.append(json.loads(self.rfile.read(length)))
                received.paths.append(self.path)
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


def spo2_batch(gateway: str, batch_id: str, subject: str, values: list[float]) -> bytes:
    """SpO2 readings a minute apart from ten minutes ago, from the subject's own oximeter."""
    start = NOW - timedelta(minutes=10)
    return encode(
        Batch(
            batch_id=batch_id,
            gateway=gateway,
            sent_at=datetime.now(UTC),
            readings=tuple(
                Reading(
                    subject=subject,
                    device=f"{gateway}-oxi-{subject}",
                    metric="spo2",
                    value=v,
                    unit="%",
                    time=start + timedelta(minutes=i),
                    source="sim",
                )
                for i, v in enumerate(values)
            ),
        )
    )


def start_service(settings: IngestSettings, notify_urls: str, **extra: object) -> IngestService:
    service = IngestService(
        settings.model_copy(
            update={
                "notify_urls": notify_urls,
                "notify_base_url": "https://clinic.example",
                "notify_backoff_s": 0.05,
                "notify_backoff_max_s": 0.2,
                "rules_tick_s": 0.2,
                **extra,
            }
        )
    )
    service.start()
    assert service.wait_ready(10)
    return service


def test_an_alert_raised_from_mqtt_readings_reaches_the_webhook_once(
    ingest_settings: IngestSettings, broker: BrokerAddress, topic_prefix: str, webhook: Webhook
) -> None:
    url = ingest_settings.database_url
    gateway = f"{topic_prefix}-gw"
    topic = gateway_topic(gateway, "readings", topic_prefix)
    service = start_service(ingest_settings, f"json://127.0.0.1:{webhook.port}/vs/alerts")
    try:
        # spo2_low: two consecutive readings below 90 % (BTS 2017); then a redelivery of the
        # same batch, which must not notify again.
        publish_raw(broker, topic, spo2_batch(gateway, "b1", "sim-n1", [96, 88, 87]))
        publish_raw(broker, topic, spo2_batch(gateway, "b1", "sim-n1", [96, 88, 87]))
        assert wait_for(lambda: len(webhook.posts) >= 1, timeout_s=20)
        assert wait_for(
            lambda: count(url, "SELECT count(*) FROM notifications WHERE status = 'sent'") == 1
        )
        wait_for(lambda: len(webhook.posts) > 1, timeout_s=1.5)  # give a duplicate a chance
    finally:
        service.stop()
    assert len(webhook.posts) == 1
    post = webhook.posts[0]
    assert webhook.paths == ["/vs/alerts"]
    assert post["title"] == "vitalstream HIGH: spo2_low (subject sim-n1)"
    assert post["type"] == "warning"
    document = json.loads(str(post["message"]))
    assert document == {
        "schema": "vitalstream.notification/1",
        "reason": "new",
        "subject": "sim-n1",
        "rule": "spo2_low",
        "severity": "high",
        "time": (NOW - timedelta(minutes=8)).isoformat(),
        "metric": "spo2",
        "value": 87.0,
        "unit": "%",
        "contact": None,
        "link": "https://clinic.example/doctor/subjects/sim-n1",
    }
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT subject, rule, severity, reason, status, attempts, channel FROM notifications"
        ).fetchone()
    assert row is not None
    assert row[:6] == ("sim-n1", "spo2_low", "high", "new", "sent", 1)
    assert str(row[6]).startswith(f"json://127.0.0.1:{webhook.port}/vs/alerts")
    assert count(url, "SELECT count(*) FROM readings") == 3


def test_a_refused_endpoint_is_retried_then_recorded_failed_without_blocking_ingest(
    ingest_settings: IngestSettings, broker: BrokerAddress, topic_prefix: str
) -> None:
    url = ingest_settings.database_url
    gateway = f"{topic_prefix}-gw"
    topic = gateway_topic(gateway, "readings", topic_prefix)
    dead = f"json://127.0.0.1:{free_port()}/hook"
    service = start_service(ingest_settings, dead, notify_attempts=3, notify_backoff_s=0.3)
    try:
        publish_raw(broker, topic, spo2_batch(gateway, "b1", "sim-n2", [88, 87]))
        assert wait_for(lambda: count(url, "SELECT count(*) FROM alerts") == 1)
        # While the notifier backs off (0.3 s, then 0.6 s), readings keep being stored.
        publish_raw(broker, topic, spo2_batch(gateway, "b2", "sim-n3", [97, 98]))
        assert wait_for(lambda: count(url, "SELECT count(*) FROM readings") == 4, timeout_s=5)
        assert count(url, "SELECT count(*) FROM notifications") == 0  # still retrying
        assert wait_for(
            lambda: count(url, "SELECT count(*) FROM notifications WHERE status = 'failed'") == 1
        )
    finally:
        service.stop()
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT subject, attempts, detail FROM notifications").fetchone()
    assert row is not None
    assert row[:2] == ("sim-n2", 3)
    assert "onnection" in str(row[2])  # apprise: "A Connection error occurred ..."
