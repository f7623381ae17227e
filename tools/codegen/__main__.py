"""`python -m tools.codegen [--spec-dir DIR] [--out-dir DIR]`: regenerate the codec."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tools.codegen.generate import generate

REPO_ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.codegen", description=__doc__)
    parser.add_argument(
        "--spec-dir",
        type=Path,
        default=REPO_ROOT.parent / "shared" / "kafka-protocol",
        help="directory holding message/ and internal/ (default: ../shared/kafka-protocol)",
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=REPO_ROOT / "src" / "josef" / "protocol" / "_generated",
        help="output package directory (default: src/josef/protocol/_generated)",
    )
    args = parser.parse_args(argv)
    written = generate(args.spec_dir, args.out_dir)
    print(f"wrote {len(written)} files to {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
