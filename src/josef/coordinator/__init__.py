"""Coordinators: deterministic state machines behind Kafka's group and transaction APIs.

Each coordinator takes decoded requests plus the current time and returns the records to append
to its internal topic together with the responses to send once those records are durable. No
clock, I/O or asyncio lives here; the broker layer pumps requests in and records out.
"""
