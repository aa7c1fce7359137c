"""Fixtures for tests against the real PostgreSQL and MQTT broker.

The servers are the ones at ``VITALSTREAM_TEST_DATABASE_URL`` / ``VITALSTREAM_TEST_BROKER_URL``
(default: the machine's PostgreSQL on 127.0.0.1:5432 and Mosquitto on 127.0.0.1:1883, which
.ci/run starts when they are down). When nothing answers there, the session starts the same
embedded PostgreSQL and broker that `vitalstream demo` falls back to, so the README's test
command passes on any machine: real servers either way, never mocks.

Isolation: every test gets its own database (created and dropped here) and its own MQTT topic
prefix and client ids, so tests never see each other's rows or messages.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from integration_support import BROKER_URL, PG_URL, free_port, make_data_dir
from psycopg import sql

from ingest_service import IngestService, IngestSettings
from vitals import BrokerAddress, parse_broker_url
from vitals.broker import forget_session
from vitalstream import services


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.integration)


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A fresh data directory for services a test starts itself."""
    path = make_data_dir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def servers() -> Iterator[tuple[str, str]]:
    """(maintenance database URL, broker URL) of real servers for the whole session."""
    path = make_data_dir()
    try:
        with (
            services.database(PG_URL, data_dir=path, database_name="postgres") as db,
            services.broker(BROKER_URL, data_dir=path) as mqtt_broker,
        ):
            yield db.url, mqtt_broker.url
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def pg_admin_url(servers: tuple[str, str]) -> str:
    """Maintenance connection of the test PostgreSQL server."""
    return servers[0]


@pytest.fixture
def broker_url(servers: tuple[str, str]) -> str:
    """URL of the test MQTT broker."""
    return servers[1]


@pytest.fixture
def database_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh, empty database for one test."""
    name = f"vs_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = psycopg.conninfo.make_conninfo(pg_admin_url, dbname=name)
    yield url
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture
def broker(broker_url: str) -> BrokerAddress:
    """The test broker's address."""
    return parse_broker_url(broker_url)


@pytest.fixture
def topic_prefix() -> str:
    """A topic prefix no other test uses."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def ingest_settings(
    database_url: str, broker_url: str, topic_prefix: str
) -> Iterator[IngestSettings]:
    """Settings of an ingest worker private to this test; its broker session is removed after."""
    settings = IngestSettings(
        database_url=database_url,
        broker_url=broker_url,
        topic_prefix=topic_prefix,
        ingest_client_id=f"{topic_prefix}-ingest",
    )
    yield settings
    forget_session(parse_broker_url(broker_url), settings.ingest_client_id)


@pytest.fixture
def ingest(ingest_settings: IngestSettings) -> Iterator[IngestService]:
    """A running in-process ingest service."""
    service = IngestService(ingest_settings)
    service.start()
    assert service.wait_ready(10), "the ingest service could not subscribe"
    yield service
    service.stop()


@pytest.fixture
def private_broker() -> Iterator[services.BrokerProcess]:
    """A mosquitto of the test's own on a free port, for tests that kill or starve it."""
    mosquitto = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/sbin")
    assert mosquitto is not None, "mosquitto is not installed"
    root = make_data_dir()
    process = services.BrokerProcess(
        "mosquitto", host="127.0.0.1", port=free_port(), data_dir=root, mosquitto=Path(mosquitto)
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()
        shutil.rmtree(root, ignore_errors=True)
