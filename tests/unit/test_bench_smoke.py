"""Every benchmark in bench/ runs in smoke mode (so none can rot), and the harness keeps
bench/RESULTS.md sections apart."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import bench
from bench.__main__ import main


@pytest.mark.parametrize("name", bench.available())
def test_benchmark_runs_in_smoke_mode(name: str) -> None:
    module = bench.load(name)
    assert module.TITLE and module.DESCRIPTION
    results = module.run(True)
    assert results
    assert len({r.name for r in results}) == len(results), "result names must be unique"
    for result in results:
        assert isinstance(result, bench.Result)
        assert math.isfinite(result.value) and result.value >= 0, result
        assert result.unit
    summarize = getattr(module, "summary", None)
    if summarize is not None:
        assert isinstance(summarize(results), str)


def test_codec_benchmark_covers_the_brief() -> None:
    from bench import codec

    names = {r.name for r in codec.run(True)}
    for expected in (
        "Produce v9 decode(), 1 MiB",
        "Produce v7 decode(), 1 MiB",
        "Produce v9 encode(), 1 MiB",
        "Produce v7 encode(), 1 MiB",
        codec.DECODE_V9_16,
        codec.CONN_1,
        codec.CONN_16,
        codec.CHUNKS_V12_16,
        codec.CRC_RATE_1,
        "Fetch v11 encode_chunks(), 10 partitions of 1 MiB",
        "Fetch v12 encode(), 1 partition of 1 MiB",
    ):
        assert expected in names


def test_main_in_smoke_mode_prints_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "RESULTS.md"
    assert main(["--smoke", "--results", str(target), "codec"]) == 0
    out = capsys.readouterr().out
    assert "Machine: " in out and "Codec" in out and "Produce v9 decode()" in out
    assert not target.exists()


def test_unknown_benchmark_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--smoke", "--results", str(tmp_path / "R.md"), "no-such-benchmark"])
    assert exc.value.code == 2


def test_update_results_replaces_only_its_own_section(tmp_path: Path) -> None:
    path = tmp_path / "RESULTS.md"
    results = [bench.Result("decode", 12.5, "µs", best=11.0, ratio=1.02, note="n")]

    def text(title: str, date: str) -> str:
        return bench.section(title, date, "2 CPUs", "What it measures.", results, "Meaning.")

    bench.update_results(path, "Storage", text("Storage", "2026-11-24"))
    bench.update_results(path, "Codec", text("Codec", "2026-11-24"))
    bench.update_results(path, "Codec", text("Codec", "2026-11-25"))
    content = path.read_text(encoding="utf-8")
    assert content.startswith("# Benchmark results")
    assert content.count("## Codec") == 1 and content.count("## Storage") == 1
    assert content.index("## Storage") < content.index("## Codec")
    storage, codec = content.split("## Codec")
    assert "2026-11-24" in storage and "2026-11-25" in codec and "2026-11-24" not in codec
    assert "| decode | 12.5 | 11.0 | µs | 1.02 | n |" in codec
    # Rewriting with the same text changes nothing.
    bench.update_results(path, "Codec", text("Codec", "2026-11-25"))
    assert path.read_text(encoding="utf-8") == content


def test_time_call_in_smoke_mode_calls_once() -> None:
    calls: list[None] = []
    median, best = bench.time_call(lambda: calls.append(None), smoke=True)
    assert len(calls) == 1 and median == best >= 0


def test_throughput_is_in_gigabytes_per_second() -> None:
    timing = bench.Result("copy", 1000.0, "µs", best=500.0)
    rate = bench.throughput("copy rate", 10**9, timing)
    assert rate.unit == "GB/s" and rate.value == pytest.approx(1000.0)
    assert rate.best == pytest.approx(2000.0)


def test_machine_line_names_cpus_python_and_loop() -> None:
    line = bench.machine()
    assert "CPUs" in line and "Python" in line and "event loop" in line
