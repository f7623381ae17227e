"""The `josef` command line: one subcommand per task, Kafka's names for options."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from josef import __version__
from josef.cli import groups, serve


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="josef",
        description="Josef: a Kafka-compatible event-streaming platform in Python.",
    )
    parser.add_argument("--version", action="version", version=f"josef {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve.add_parser(subparsers)
    groups.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return int(args.func(args))
