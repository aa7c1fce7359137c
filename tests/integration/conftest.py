"""Fixtures for tests against the real PostgreSQL and MQTT broker (started by .ci/run).

Isolation: every test gets its own database (created and dropped here) and its own MQTT topic
prefix and client ids, so tests never see each other's rows or messages.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from integration_support import BROKER_URL, PG_URL
from psycopg import sql

from ingest_service import IngestService, IngestSettings
from vitals import BrokerAddress, parse_broker_url
from vitals.broker import forget_session


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.integration)


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A fresh data directory. Not pytest's tmp_path: that lives under a 0700 directory, which
    the unprivileged users the servers run as under root cannot enter."""
    path = Path(tempfile.mkdtemp(prefix="vs-services-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def database_url() -> Iterator[str]:
    """A fresh, empty database for one test."""
    name = f"vs_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = psycopg.conninfo.make_conninfo(PG_URL, dbname=name)
    yield url
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture
def broker() -> BrokerAddress:
    """The test broker's address."""
    return parse_broker_url(BROKER_URL)


@pytest.fixture
def topic_prefix() -> str:
    """A topic prefix no other test uses."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def ingest_settings(database_url: str, topic_prefix: str) -> Iterator[IngestSettings]:
    """Settings of an ingest worker private to this test; its broker session is removed after."""
    settings = IngestSettings(
        database_url=database_url,
        broker_url=BROKER_URL,
        topic_prefix=topic_prefix,
        ingest_client_id=f"{topic_prefix}-ingest",
    )
    yield settings
    forget_session(parse_broker_url(BROKER_URL), settings.ingest_client_id)


@pytest.fixture
def ingest(ingest_settings: IngestSettings) -> Iterator[IngestService]:
    """A running in-process ingest service."""
    service = IngestService(ingest_settings)
    service.start()
    assert service.wait_ready(10), "the ingest service could not subscribe"
    yield service
    service.stop()
