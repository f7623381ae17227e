"""`josef serve`: run a single-node broker in the foreground until SIGTERM/SIGINT.

Settings come from, in increasing precedence, Josef's defaults, `--config FILE` (Kafka's
server.properties syntax), `JOSEF_*` environment variables and repeatable
`--override key=value` flags (Kafka's own flag name). Exit codes: 0 after a clean shutdown,
2 for invalid configuration.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from josef.broker.app import serve
from josef.cluster.config import ConfigError
from josef.cluster.properties import load_broker_config


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run a Kafka-compatible broker",
        description="Run a single-node Kafka-compatible broker until SIGTERM/SIGINT.",
    )
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="broker properties file (Kafka's server.properties syntax)")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="set one broker config, e.g. --override log.dirs=/tmp/josef "
                        "(repeatable; wins over the file and JOSEF_* variables)")
    parser.add_argument("--log-level", default="INFO",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="logging level (default INFO)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        config = load_broker_config(args.config, args.override)
    except (ConfigError, OSError) as err:
        print(f"josef serve: invalid configuration: {err}", file=sys.stderr)
        return 2
    return serve(config, args.config)
