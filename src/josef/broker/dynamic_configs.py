"""Dynamic broker configs (KIP-226) of a single node, kept across restarts.

Contract: `<first log dir>/josef-dynamic-configs.json` holds BrokerConfig's two dynamic layers
as text, exactly as AlterConfigs / IncrementalAlterConfigs set them: "broker" (this node's
per-broker configs, resource name = its node id) and "default" (the cluster default, resource
name ""). Kafka keeps these in its metadata log; a single node keeps them next to the topics
table, written atomically (temp, fsync, rename, fsync dir). `load_dynamic_configs` applies the
file at start; a missing file means no dynamic configs. An unreadable or invalid file makes
the start fail with an exception: silently dropping configs an operator set would be worse.
"""

from __future__ import annotations

import json
from pathlib import Path

from josef.cluster.config import BrokerConfig, to_string
from josef.storage.files import write_atomically

DYNAMIC_CONFIGS_FILE = "josef-dynamic-configs.json"
STORE_VERSION = 1


def layer_text(config: BrokerConfig, per_broker: bool) -> dict[str, str]:
    """A dynamic layer as text (what AlterConfigs sets and the file stores)."""
    layer = config.dynamic_broker if per_broker else config.dynamic_default
    return {name: str(to_string(value)) for name, value in layer.items()}


def load_dynamic_configs(config: BrokerConfig, data_dir: Path) -> BrokerConfig:
    """`config` with the persisted dynamic layers applied (unchanged when there are none)."""
    path = Path(data_dir) / DYNAMIC_CONFIGS_FILE
    if not path.exists():
        return config
    doc = json.loads(path.read_text(encoding="utf-8"))
    if doc.get("version") != STORE_VERSION:
        raise RuntimeError(f"{path}: unsupported version {doc.get('version')!r}")
    broker = {str(k): str(v) for k, v in doc.get("broker", {}).items()}
    default = {str(k): str(v) for k, v in doc.get("default", {}).items()}
    if not broker and not default:
        return config
    return config.with_dynamic(dynamic_broker=broker, dynamic_default=default)


def save_dynamic_configs(config: BrokerConfig, data_dir: Path) -> None:
    doc = {
        "version": STORE_VERSION,
        "broker": layer_text(config, per_broker=True),
        "default": layer_text(config, per_broker=False),
    }
    path = Path(data_dir) / DYNAMIC_CONFIGS_FILE
    write_atomically(path, json.dumps(doc, indent=1, sort_keys=True).encode())
