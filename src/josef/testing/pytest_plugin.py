"""pytest plugin: the `josef_broker` fixture, a fresh `EmbeddedBroker` per test.

Enable it in a conftest.py with `pytest_plugins = ["josef.testing.pytest_plugin"]`, then:

    def test_roundtrip(josef_broker):
        producer = Producer({"bootstrap.servers": josef_broker.bootstrap_servers})
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from josef.testing.embedded import EmbeddedBroker


@pytest.fixture
def josef_broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as broker:
        yield broker
