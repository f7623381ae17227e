"""The disk storage engine: segmented partition logs under log dirs (see docs/storage.md)."""

from josef.storage.disk.log import DiskPartitionLog, FlushJob
from josef.storage.disk.manager import DiskPartitionLogs

__all__ = ["DiskPartitionLog", "DiskPartitionLogs", "FlushJob"]
