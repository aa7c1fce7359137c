"""schemathesis against the API's own OpenAPI spec: no generated request gets a 5xx (issue 10).

The app runs under uvicorn on 127.0.0.1 over a fresh, migrated database (the lifespan runs as
in production: key file, migrations, pool). Every operation in ``/openapi.json`` is fuzzed with
valid (positive) and schema-violating (negative) requests, a bounded number of each, and every
response is checked with schemathesis' ``not_a_server_error``. Each request carries a freshly
minted admin token, so requests reach the handlers (a 401 would test nothing) and a generated
``POST /auth/revoke`` that logs its own token out cannot lock the rest of the run out. The
token is an admin's, except for the alert actions, which an admin may not take (``er`` may),
and a gateway's own status, which only that gateway's ``device`` token may write (so the
generated statuses reach the database).
Negative generation also drops the bearer token (a 401, which is fine: not a 5xx).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from integration_support import free_port, wait_for
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Err

from ingest_service import migrate
from ingest_service.api import ApiSettings, TokenError, create_app, load_signing_key, mint_token

#: Examples per operation and generation mode: ~20 operations x 2 modes x this, well under a
#: minute against a local database.
EXAMPLES_PER_OPERATION = 25


@contextmanager
def served_api(database_url: str, key_file: Path) -> Iterator[str]:
    """The app under uvicorn on a free loopback port; yields its base URL, stops it after."""
    settings_ = ApiSettings(database_url=database_url, api_key_file=key_file)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings_), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
        )
    )
    thread = threading.Thread(target=server.run, name="fuzzed-api", daemon=True)
    thread.start()
    try:
        assert wait_for(lambda: server.started, 30), "the API did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def _token(key: bytes, case: schemathesis.Case[Any]) -> str:
    """A token of the role the operation is meant for."""
    now = datetime.now(UTC)
    gateway = (case.path_parameters or {}).get("gateway")
    if case.path.endswith("/{gateway}/status") and isinstance(gateway, str):
        try:
            return mint_token(key, user="fuzz-device", role="device", gateway=gateway, now=now)
        except TokenError:  # a generated id that is no identifier: the path refuses it anyway
            pass
    role = "er" if "/{alert_id}/" in case.path else "admin"
    return mint_token(key, user=f"fuzz-{role}", role=role, now=now)


def test_no_generated_request_gets_a_server_error(database_url: str, tmp_path: Path) -> None:
    with psycopg.connect(database_url) as conn:
        migrate(conn)
    key_file = tmp_path / "api-token.key"
    with served_api(database_url, key_file) as base_url:
        key = load_signing_key(key_file, create=False)
        schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
        failures: list[str] = []
        statuses: Counter[int] = Counter()
        operations = 0
        for result in schema.get_all_operations():
            if isinstance(result, Err):
                failures.append(f"an operation the spec does not describe well: {result.err()}")
                continue
            operation = result.ok()
            operations += 1
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

                @given(case=operation.as_strategy(generation_mode=mode))
                @settings(
                    max_examples=EXAMPLES_PER_OPERATION,
                    deadline=None,
                    database=None,
                    derandomize=True,
                    suppress_health_check=list(HealthCheck),
                )
                def fuzz(case: schemathesis.Case[Any]) -> None:
                    token = _token(key, case)
                    response = case.call(
                        base_url=base_url, headers={"Authorization": f"Bearer {token}"}
                    )
                    statuses[response.status_code] += 1
                    try:
                        case.validate_response(response, checks=[not_a_server_error])
                    except (FailureGroup, AssertionError):
                        failures.append(
                            f"{response.status_code} {case.method} {case.formatted_path}: "
                            f"{case.as_curl_command()}\n  -> {response.text[:300]}"
                        )

                try:
                    fuzz()
                except Unsatisfiable:
                    # Nothing to violate (an operation without parameters or body).
                    assert mode is GenerationMode.NEGATIVE, operation.label
    assert operations >= 15, f"only {operations} operations in the spec"
    print(f"{operations} operations, {statuses.total()} requests, statuses {dict(statuses)}")
    # The token works: generated requests reach the handlers rather than stopping at a 401.
    succeeded = sum(n for code, n in statuses.items() if 200 <= code < 300)
    assert succeeded > statuses.total() // 4, statuses
    assert not failures, "server errors:\n" + "\n".join(failures)
