"""Running the ``vo`` command as a user would, for the CLI tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

VO = str(Path(sys.executable).parent / "vo")


def vo(
    *args: str, cwd: Path | None = None, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    """Run ``vo ARGS`` in a real process; capture its output."""
    return subprocess.run([VO, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd)
