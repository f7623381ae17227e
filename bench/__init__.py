"""Benchmark harness: timing loops, a result type, machine facts, and bench/RESULTS.md upkeep.

Contract for a benchmark: a module `bench/<name>.py` (names starting with "_" are not
benchmarks) that defines
- `TITLE: str`, the heading of its section in RESULTS.md (e.g. "Codec");
- `DESCRIPTION: str`, what is measured and how, one paragraph;
- `run(smoke: bool) -> list[Result]`; `smoke=True` means tiny inputs and a single call per
  measurement, so that a unit test can run every benchmark in well under a second;
- optionally `summary(results: list[Result]) -> str`, one line on what the numbers mean.
`python -m bench [name ...]` runs them (see bench/__main__.py). Each run replaces the
benchmark's own section in RESULTS.md and leaves the other sections alone.
"""

from __future__ import annotations

import gc
import importlib
import importlib.metadata
import os
import pkgutil
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

RESULTS_PATH = Path(__file__).resolve().parent / "RESULTS.md"

# One repeat of a timing loop lasts at least this long (timeit's autorange uses 0.2 s; the
# machines are shared, so runs are kept short and the median of several repeats is reported).
TARGET_REPEAT_SECONDS = 0.05
DEFAULT_REPEATS = 7

_RESULTS_PREAMBLE = """# Benchmark results

Written by `python -m bench [name ...]` (`make bench`); each run replaces the section of the
benchmarks it ran. Times are per call: the median of several repeats and the fastest repeat.
Compare numbers only within one section: machines are shared and noisy.
"""


@dataclass(frozen=True, slots=True)
class Result:
    """One measured number. `value` is the median of the repeats and `best` the best repeat
    (lowest time, highest throughput); `ratio` compares `value` with a baseline the note
    names (e.g. the same operation at another size)."""

    name: str
    value: float
    unit: str
    best: float | None = None
    ratio: float | None = None
    note: str = ""


def time_call(
    fn: Callable[[], object], *, smoke: bool, repeats: int = DEFAULT_REPEATS
) -> tuple[float, float]:
    """(median, min) microseconds per call of `fn`, timeit-style: loops of calls with the
    garbage collector off, the loop length calibrated so one repeat lasts about
    TARGET_REPEAT_SECONDS. In smoke mode `fn` is called exactly once."""
    if smoke:
        number, repeats = 1, 1
    else:
        start = time.perf_counter()
        fn()
        per_call = time.perf_counter() - start
        number = max(1, int(TARGET_REPEAT_SECONDS / max(per_call, 1e-9)))
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        samples: list[float] = []
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(number):
                fn()
            samples.append((time.perf_counter() - start) / number * 1e6)
    finally:
        if gc_was_enabled:
            gc.enable()
    return statistics.median(samples), min(samples)


def timed(
    name: str,
    fn: Callable[[], object],
    *,
    smoke: bool,
    note: str = "",
    baseline: Result | None = None,
) -> Result:
    """A microseconds Result for `fn`; with `baseline`, ratio = this median / baseline's."""
    median, best = time_call(fn, smoke=smoke)
    ratio = median / baseline.value if baseline is not None and baseline.value > 0 else None
    return Result(name, median, "µs", best=best, ratio=ratio, note=note)


def throughput(name: str, nbytes: int, timing: Result, note: str = "") -> Result:
    """GB/s (10**9 bytes per second) for processing `nbytes` in `timing`'s time."""
    assert timing.unit == "µs"
    best = timing.best if timing.best is not None else timing.value
    return Result(name, nbytes / timing.value / 1e3, "GB/s", best=nbytes / best / 1e3, note=note)


# --- the machine ---------------------------------------------------------------------------------
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / (1024 * 1024)
    except OSError:
        pass
    return None


def _event_loop() -> str:
    """The loop Josef's broker runs on here: uvloop when installed, else asyncio's own."""
    try:
        return f"uvloop {importlib.metadata.version('uvloop')}"
    except importlib.metadata.PackageNotFoundError:
        return "asyncio"


def machine() -> str:
    """One line: CPUs, CPU model, memory, Python, event loop, and the load when the run began
    (a load near or above the CPU count means the numbers are from a busy machine)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    memory = _memory_gib()
    parts = [
        f"{cpus} CPUs ({_cpu_model()})",
        f"{memory:.1f} GiB RAM" if memory is not None else "memory unknown",
        f"{platform.python_implementation()} {platform.python_version()}",
        f"event loop {_event_loop()}",
    ]
    if hasattr(os, "getloadavg"):
        parts.append(f"load average {os.getloadavg()[0]:.2f} at start")
    return ", ".join(parts)


# --- benchmarks ----------------------------------------------------------------------------------
def available() -> list[str]:
    """Names of the benchmark modules in this package, sorted."""
    return sorted(
        info.name for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_")
    )


def load(name: str) -> ModuleType:
    module = importlib.import_module(f"{__name__}.{name}")
    for attribute in ("TITLE", "DESCRIPTION", "run"):
        if not hasattr(module, attribute):
            raise AttributeError(f"benchmark bench.{name} does not define {attribute}")
    return module


# --- output --------------------------------------------------------------------------------------
def format_number(value: float | None) -> str:
    if value is None:
        return ""
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _row(result: Result) -> list[str]:
    ratio = f"{result.ratio:.2f}" if result.ratio is not None else ""
    return [
        result.name,
        format_number(result.value),
        format_number(result.best),
        result.unit,
        ratio,
        result.note,
    ]


_HEADINGS = ["Measurement", "Median", "Best", "Unit", "Ratio", "Note"]


def text_table(results: list[Result]) -> str:
    """An aligned plain-text table for the terminal."""
    rows = [_HEADINGS, *(_row(r) for r in results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADINGS))]
    numeric = {1, 2, 4}
    lines = []
    for row in rows:
        cells = [
            cell.rjust(width) if i in numeric else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def markdown_table(results: list[Result]) -> str:
    lines = [
        "| " + " | ".join(_HEADINGS) + " |",
        "|---|---:|---:|---|---:|---|",
    ]
    lines += ["| " + " | ".join(_row(r)) + " |" for r in results]
    return "\n".join(lines)


def section(
    title: str, date: str, machine_line: str, description: str, results: list[Result],
    summary: str = "", note: str = "",
) -> str:
    """The Markdown section of one benchmark run, starting with its "## title" heading."""
    parts = [f"## {title}", f"Date: {date}. Machine: {machine_line}."]
    if note:
        parts.append(f"Note: {note}")
    parts += [description, markdown_table(results)]
    if summary:
        parts.append(summary)
    return "\n\n".join(parts) + "\n"


def update_results(path: Path, title: str, new_section: str) -> None:
    """Replace the section headed "## title" in the Markdown file at `path`, or append it;
    the file is created with a short preamble when missing."""
    text = path.read_text(encoding="utf-8") if path.exists() else _RESULTS_PREAMBLE
    heading = f"## {title}"
    blocks: list[list[str]] = [[]]  # blocks[0] is the preamble, then one block per "## " section
    for line in text.splitlines(keepends=True):
        if line.startswith("## "):
            blocks.append([])
        blocks[-1].append(line)
    rendered = ["".join(block).rstrip("\n") + "\n" for block in blocks]
    for i, block in enumerate(blocks[1:], start=1):
        if block[0].rstrip("\n") == heading:
            rendered[i] = new_section
            break
    else:
        rendered.append(new_section)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("\n".join(rendered), encoding="utf-8")
    os.replace(tmp, path)
