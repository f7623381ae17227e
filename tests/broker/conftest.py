"""A real `josef serve` process per test module (or per test, for restarts), on a free port."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

START_TIMEOUT_S = 30.0
_ADVERTISED = re.compile(r"advertised listener:\s+PLAINTEXT://([^:\s]+):(\d+)")


class ServeProcess:
    """`python -m josef serve` on 127.0.0.1 port 0 (the banner tells the port)."""

    def __init__(
        self, data_dir: Path, overrides: dict[str, str] | None = None, args: tuple[str, ...] = ()
    ) -> None:
        self.data_dir = data_dir
        self.args = args
        self.overrides = {
            "listeners": "PLAINTEXT://127.0.0.1:0",
            "log.dirs": str(data_dir / "logs"),
            **(overrides or {}),
        }
        self.log_path = data_dir / "serve.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self._log_offset = 0

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> ServeProcess:
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        args = [sys.executable, "-m", "josef", "serve", *self.args]
        for key, value in self.overrides.items():
            args += ["--override", f"{key}={value}"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("JOSEF_")}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=log, env=env)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            match = _ADVERTISED.search(self.log())
            if match:
                self.port = int(match.group(2))
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"josef serve exited {self.proc.returncode}:\n{self.log()}")
            time.sleep(0.05)
        self.kill()
        raise TimeoutError(f"josef serve did not start:\n{self.log()}")

    def log(self) -> str:
        """What this run (since the last start) wrote to stdout/stderr."""
        with open(self.log_path, "rb") as f:
            f.seek(self._log_offset)
            return f.read().decode(errors="replace")

    def stop(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    proc = ServeProcess(tmp_path_factory.mktemp("serve"))
    proc.start()
    try:
        yield proc
    finally:
        proc.kill()


@pytest.fixture
def serve_factory(tmp_path: Path) -> Iterator[Callable[..., ServeProcess]]:
    started: list[ServeProcess] = []

    def make(overrides: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> ServeProcess:
        proc = ServeProcess(tmp_path, overrides, args)
        started.append(proc)
        return proc

    try:
        yield make
    finally:
        for proc in started:
            proc.kill()
