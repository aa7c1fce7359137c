"""edge_agent: the gateway shell (sources, outbox, MQTT link). Never imports ingest_service."""

from edge_agent.agent import AgentSettings, EdgeAgent, retry_delay
from edge_agent.outbox import Outbox

__all__ = ["AgentSettings", "EdgeAgent", "Outbox", "retry_delay"]
