"""The checked-in generated codec equals what the generator writes today."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.codegen.generate import generate

ROOT = Path(__file__).resolve().parents[3]
SPEC_DIR = ROOT.parent / "shared" / "kafka-protocol"
CHECKED_IN = ROOT / "src" / "josef" / "protocol" / "_generated"


@pytest.mark.skipif(not SPEC_DIR.is_dir(), reason=f"{SPEC_DIR} is absent")
def test_generated_code_is_fresh(tmp_path: Path) -> None:
    written = generate(SPEC_DIR, tmp_path)
    fresh = {p.relative_to(tmp_path).as_posix() for p in written}
    present = {p.relative_to(CHECKED_IN).as_posix() for p in CHECKED_IN.rglob("*.py")}
    assert fresh == present, "run `make gen`: generated file set differs"
    stale = [
        rel
        for rel in sorted(fresh)
        if (tmp_path / rel).read_bytes() != (CHECKED_IN / rel).read_bytes()
    ]
    assert not stale, f"run `make gen`: stale generated files {stale}"
