"""Generator for Josef's Kafka wire-protocol codec.

Reads Apache Kafka's JSON message specifications (by default from `../shared/kafka-protocol`
relative to the repository root) and writes one Python module per API into
`src/josef/protocol/_generated`. Run it with `python -m tools.codegen`; the output is checked
in and a test fails when regenerating would change it.
"""
