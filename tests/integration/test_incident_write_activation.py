"""Findings typed in at the ER desk (API) activate a pathway without waiting for a reading."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from integration_support import wait_for
from test_api_support import api_client, bearer

from ingest_service.handoff import ErNotice, HandoffService, HandoffSettings
from vitals.broker import forget_session, parse_broker_url


def test_stroke_findings_written_through_the_api_pre_alert_the_stroke_team(
    database_url: str, broker_url: str, topic_prefix: str, tmp_path: Path
) -> None:
    """AHA/ASA 2019: BE-FAST positive within the window → stroke team pre-alert."""
    notices: list[ErNotice] = []
    client_id = f"{topic_prefix}-handoff-{uuid.uuid4().hex[:6]}"
    with api_client(database_url, tmp_path) as client:
        headers = bearer(client, "er", "desk")
        opened = client.post(
            "/api/v1/incidents", json={"gateway": "amb-9", "pathway": "stroke"}, headers=headers
        )
        assert opened.status_code == 201, opened.text
        incident = opened.json()["incident"]["id"]
        service = HandoffService(
            HandoffSettings(
                database_url=database_url,
                broker_url=broker_url,
                topic_prefix=topic_prefix,
                handoff_client_id=client_id,
                er_webhook_url=None,
            ),
            notify=notices.append,
        )
        service.start()
        try:
            assert service.wait_ready(10)
            well = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
            patched = client.patch(
                f"/api/v1/incidents/{incident}",
                json={"findings": {"befast_positive": True, "last_known_well": well}},
                headers=headers,
            )
            assert patched.status_code == 200, patched.text
            assert wait_for(lambda: any(n.activation.team == "stroke_team" for n in notices), 15)
        finally:
            service.stop()
            forget_session(parse_broker_url(broker_url), client_id)
