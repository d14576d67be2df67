"""The event bus: envelopes, NATS-style topic patterns, a Protocol and its backends."""

from sysmonstm.events.bus import Bus, Subscription
from sysmonstm.events.envelope import Envelope, decode_envelope, encode_envelope
from sysmonstm.events.registry import open_bus
from sysmonstm.events.topics import TopicPattern, topic_token, validate_topic

__all__ = [
    "Bus",
    "Envelope",
    "Subscription",
    "TopicPattern",
    "decode_envelope",
    "encode_envelope",
    "open_bus",
    "topic_token",
    "validate_topic",
]
