"""`housing smoke` fails loudly, naming the checks, when nothing healthy answers."""

from __future__ import annotations

import socket
import sys

from delivery_tools import run

from housing.features import FEATURES
from housing.smoke import invalid_row


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_smoke_against_a_closed_port_exits_non_zero_naming_the_checks() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    result = run(sys.executable, "-m", "housing.cli", "smoke", "--url", url, "--timeout", "2")
    assert result.returncode == 1
    assert f"error: smoke test of {url} failed: health, ready, predict, invalid, metrics" in (
        result.stderr
    )
    assert "FAIL health" in result.stdout and "ConnectError" in result.stdout
    assert "Traceback" not in result.stderr


def test_smoke_wait_gives_up_after_the_given_seconds() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    result = run(
        sys.executable, "-m", "housing.cli", "smoke", "--url", url, "--wait", "2", "--timeout", "1"
    )
    assert result.returncode == 1 and "failed: health" in result.stderr


def test_the_invalid_row_breaks_exactly_one_rule_of_the_spec() -> None:
    row, name = invalid_row()
    broken = [f.name for f in FEATURES if not f.min <= row[f.name] <= f.max]
    assert broken == [name]
