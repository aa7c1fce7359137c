"""vitalstream: the command line that wires vitals, firmware_bridge, alert_rules, edge_agent
and ingest_service together. It holds no domain logic of its own."""

__version__ = "0.1.0"
