import subprocess
import sys

from josef import __version__


def test_version_and_help() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "josef", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"josef {__version__}"
    out = subprocess.run(
        [sys.executable, "-m", "josef", "--help"], capture_output=True, text=True, check=True
    )
    assert "usage: josef" in out.stdout
