"""The API's database pool: psycopg 3 ``ConnectionPool`` shared by synchronous endpoints.

Why sync: :func:`ingest_service.audit.append` and the storage helpers are written against the
synchronous psycopg connection, and the audit row must commit in the same transaction as the
read it records; FastAPI runs sync endpoints in its threadpool, so a slow query blocks one
worker thread, not the event loop. The pool is smaller than the threadpool (40), so at most
``api_pool_max_size`` requests touch the database at once and the rest queue for a connection
(with a timeout that turns into a 503) instead of overloading PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from ingest_service.api.settings import ApiSettings

Connection = psycopg.Connection[Any]


def make_pool(settings: ApiSettings) -> ConnectionPool[Connection]:
    """A closed pool; the app opens it at start-up and closes it at shutdown."""
    timeout_ms = settings.api_statement_timeout_ms

    def configure(conn: Connection) -> None:
        # UTC on the wire so timestamps serialise alike whatever the server's TimeZone is;
        # a statement timeout so one huge range cannot hold a connection forever.
        conn.autocommit = True
        conn.execute("SET TIME ZONE 'UTC'")
        conn.execute(f"SET statement_timeout = {int(timeout_ms)}")
        conn.autocommit = False

    return ConnectionPool(
        settings.database_url,
        min_size=settings.api_pool_min_size,
        max_size=settings.api_pool_max_size,
        configure=configure,
        check=ConnectionPool.check_connection,
        timeout=10.0,
        open=False,
        name="vitalstream-api",
    )
