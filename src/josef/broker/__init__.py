"""The broker: the only network server (asyncio pump, handler registry, purgatory, topics).

Entry points: `josef.broker.app.run_broker` (used by `josef serve` and `josef.testing`)."""
