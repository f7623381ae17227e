"""Crash-safe file replacement, shared by every small metadata file Josef writes.

`write_atomically` writes a temporary file, fsyncs it, renames it over the target and fsyncs
the directory: after a crash a reader finds the old file or the new one, never a mix.
Blocking: call it off the event loop where it matters.
"""

from __future__ import annotations

import os


def write_atomically(path: str | os.PathLike[str], data: bytes) -> None:
    target = os.fspath(path)
    directory = os.path.dirname(target) or "."
    os.makedirs(directory, exist_ok=True)
    tmp = target + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, target)
    fsync_dir(directory)


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Make a rename or a new file in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
