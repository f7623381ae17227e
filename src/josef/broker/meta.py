"""`meta.properties`: the identity of a log dir (Kafka's KRaft format, version 1).

Contract: every log dir holds `meta.properties` with `version=1`, `cluster.id` and `node.id`.
The cluster id is generated once (Kafka's form: a random uuid, base64url without padding,
22 characters) and then read back at every start. A log dir that belongs to another node or
cluster is refused at start-up (`MetaPropertiesError`), as Kafka refuses it, so two brokers
never mix their data.
"""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

from josef.storage.files import write_atomically

META_FILE = "meta.properties"
META_VERSION = 1


class MetaPropertiesError(Exception):
    """A log dir's identity does not match this broker's configuration."""


def new_cluster_id() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


def _read(path: Path) -> dict[str, str]:
    props: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line[0] in "#!":
            continue
        key, sep, value = line.partition("=")
        if sep:
            props[key.strip()] = value.strip()
    return props


def ensure_meta_properties(log_dirs: list[Path], node_id: int) -> str:
    """Read or create meta.properties in every log dir; returns the cluster id."""
    found: dict[Path, dict[str, str]] = {}
    for log_dir in log_dirs:
        path = log_dir / META_FILE
        if path.exists():
            found[log_dir] = _read(path)
    cluster_ids = {props.get("cluster.id") for props in found.values()}
    if len(cluster_ids) > 1:
        raise MetaPropertiesError(
            f"log dirs belong to different clusters: {sorted(map(str, cluster_ids))}"
        )
    for log_dir, props in found.items():
        if props.get("version") != str(META_VERSION):
            raise MetaPropertiesError(
                f"{log_dir / META_FILE}: unsupported version {props.get('version')!r}"
            )
        if props.get("node.id") != str(node_id):
            raise MetaPropertiesError(
                f"{log_dir / META_FILE}: node.id {props.get('node.id')} does not match "
                f"the configured node.id {node_id}"
            )
        if not props.get("cluster.id"):
            raise MetaPropertiesError(f"{log_dir / META_FILE}: no cluster.id")
    cluster_id = cluster_ids.pop() if found else None
    if not cluster_id:
        cluster_id = new_cluster_id()
    text = (
        "#Written by josef: the identity of this log dir; do not edit.\n"
        f"version={META_VERSION}\ncluster.id={cluster_id}\nnode.id={node_id}\n"
    )
    for log_dir in log_dirs:
        if log_dir not in found:
            log_dir.mkdir(parents=True, exist_ok=True)
            write_atomically(log_dir / META_FILE, text.encode())
    return cluster_id
