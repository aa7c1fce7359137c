"""vitals: the shared contract of vitalstream (catalogue, models, topics, payload codec).

Imports nothing else of vitalstream; every other package imports it.
"""

from vitals.broker import BrokerAddress, parse_broker_url
from vitals.catalogue import CATALOGUE, MetricSpec, by_mdc_code, metric
from vitals.codec import MAX_PAYLOAD_BYTES, decode, encode
from vitals.errors import ImplausibleValueError, PayloadError, UnknownMetricError, VitalsError
from vitals.models import (
    SCHEMA_VERSION,
    AlarmThreshold,
    Alert,
    Batch,
    BatchAck,
    DeviceAssignment,
    DeviceStatus,
    EventBatch,
    GatewayConfig,
    GatewayStatus,
    Lane,
    LocalAlarm,
    NoValue,
    Reading,
    Severity,
    Source,
    is_identifier,
    now_utc,
    utc,
)
from vitals.topics import DEFAULT_PREFIX, gateway_topic, parse_topic, subscription

__all__ = [
    "CATALOGUE",
    "DEFAULT_PREFIX",
    "MAX_PAYLOAD_BYTES",
    "SCHEMA_VERSION",
    "AlarmThreshold",
    "Alert",
    "Batch",
    "BatchAck",
    "BrokerAddress",
    "DeviceAssignment",
    "DeviceStatus",
    "EventBatch",
    "GatewayConfig",
    "GatewayStatus",
    "ImplausibleValueError",
    "Lane",
    "LocalAlarm",
    "MetricSpec",
    "NoValue",
    "PayloadError",
    "Reading",
    "Severity",
    "Source",
    "UnknownMetricError",
    "VitalsError",
    "by_mdc_code",
    "decode",
    "encode",
    "gateway_topic",
    "is_identifier",
    "metric",
    "now_utc",
    "parse_broker_url",
    "parse_topic",
    "subscription",
    "utc",
]
