"""Helpers for the delivery tests: paths and running the repository's own linters.

A plain module (not conftest.py) so its name cannot clash with tests/conftest.py on import.
"""

from __future__ import annotations

import os
import subprocess  # nosec B404 - the tests run linters the project pins
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    """Path of a console script installed in this virtualenv (fails clearly when missing)."""
    for candidate in (BIN / name, BIN / f"{name}.exe"):
        if candidate.exists():
            return str(candidate)
    pytest.fail(f"{name} is not installed in {BIN}: run `make install-dev`")


def run(
    *args: str, cwd: Path = ROOT, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing text output (never raises on a non-zero exit); ``env`` adds."""
    return subprocess.run(  # nosec B603 - fixed argument lists
        list(args),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
    )
