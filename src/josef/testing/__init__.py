"""In-process brokers for tests: `EmbeddedBroker` (a context manager) and the `josef_broker`
pytest fixture (enable with `pytest_plugins = ["josef.testing.pytest_plugin"]`)."""

from __future__ import annotations

from josef.testing.embedded import EmbeddedBroker

__all__ = ["EmbeddedBroker"]
