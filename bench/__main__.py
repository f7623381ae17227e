"""`python -m bench [name ...]`: run the named benchmarks (all when none is named), print a table
for each, and replace their sections in bench/RESULTS.md. `--smoke` runs tiny inputs once each
and writes nothing (numbers from it mean nothing)."""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

import bench


def main(argv: list[str] | None = None) -> int:
    names = bench.available()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="name", help=f"one of {', '.join(names)}")
    parser.add_argument("--smoke", action="store_true", help="tiny inputs, one call, no writing")
    parser.add_argument(
        "--results", type=Path, default=bench.RESULTS_PATH, help="Markdown file to update"
    )
    parser.add_argument("--note", default="", help="a remark for the sections written")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in names]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(names)}")

    machine_line = bench.machine()
    print(f"Machine: {machine_line}")
    for name in args.names or names:
        module = bench.load(name)
        results = module.run(args.smoke)
        summarize = getattr(module, "summary", None)
        summary = summarize(results) if summarize is not None else ""
        print(f"\n{module.TITLE}\n")
        print(bench.text_table(results))
        if summary:
            print(f"\n{summary}")
        if not args.smoke:
            text = bench.section(
                module.TITLE,
                datetime.date.today().isoformat(),
                machine_line,
                module.DESCRIPTION,
                results,
                summary,
                args.note,
            )
            bench.update_results(args.results, module.TITLE, text)
    if not args.smoke:
        print(f"\nWritten to {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
