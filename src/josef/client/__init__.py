"""A small asyncio Kafka client on Josef's own protocol layer (used by the CLI and tools).

`KafkaConnection` is one connection to one broker: `open` connects and negotiates versions
with ApiVersions; `send(body)` encodes a generated request at the highest version both sides
support and returns the decoded response. One request is in flight at a time.
"""

from josef.client.connection import ClientError, KafkaConnection

__all__ = ["ClientError", "KafkaConnection"]
