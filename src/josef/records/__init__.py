"""Kafka's record batch format (magic 2): header view, records, codecs, control records, builder."""
