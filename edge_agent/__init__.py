"""edge_agent: the gateway shell (sources, outbox, MQTT link). Never imports ingest_service."""

from edge_agent.agent import AgentSettings, EdgeAgent, retry_delay
from edge_agent.alarms import LocalAlarms, LocalAlarmSettings
from edge_agent.backoff import reconnect_delay
from edge_agent.link import LinkBackoff, LinkTls
from edge_agent.outbox import Outbox

__all__ = [
    "AgentSettings",
    "EdgeAgent",
    "LinkBackoff",
    "LinkTls",
    "LocalAlarmSettings",
    "LocalAlarms",
    "Outbox",
    "reconnect_delay",
    "retry_delay",
]
