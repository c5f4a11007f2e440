"""The Evidently helper process never outlives the server: stopped by ``Monitor.close`` even in
the middle of a check, and gone by itself when the server process is killed (SIGKILL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from prometheus_client import CollectorRegistry

from housing.monitoring.job import PARENT_CHECK_SECONDS, Monitor
from housing.monitoring.metrics import build_monitoring_metrics
from housing.monitoring.settings import MonitoringSettings
from housing.service import log as prediction_log

pytestmark = [pytest.mark.slow, pytest.mark.posix]  # /proc, SIGKILL


def gone(pid: int) -> bool:
    """Exited (a zombie counts: nothing reaps orphans in some containers)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


def wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if gone(pid):
            return True
        time.sleep(0.1)
    return gone(pid)


def busy_monitor(tmp_path: Path, data_dir: Path) -> Monitor:
    engine = prediction_log.create_log_engine(f"sqlite:///{tmp_path / 'log.db'}")
    settings = MonitoringSettings(data_dir=data_dir)
    return Monitor(engine, settings, build_monitoring_metrics(CollectorRegistry()))


def helper_pid(monitor: Monitor, seconds: float = 60.0) -> int:
    """The pid of the monitor's Evidently process, once it runs."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        executor = monitor._executor
        processes = list(getattr(executor, "_processes", {}).values()) if executor else []
        if processes and processes[0].pid:
            return processes[0].pid
        time.sleep(0.05)
    raise AssertionError("the Evidently process never started")


def test_close_stops_the_evidently_process_in_the_middle_of_a_check(
    prepared_data_dir: Path, reference: pd.DataFrame, held_out: pd.DataFrame, tmp_path: Path
) -> None:
    monitor = busy_monitor(tmp_path, prepared_data_dir)
    current = pd.concat([held_out] * 10, ignore_index=True)  # ~41,000 rows: seconds of work
    outcome: list[BaseException | object] = []

    def check() -> None:
        try:
            outcome.append(monitor._detect(reference, current))
        except BaseException as exc:  # the cancelled check fails: that is expected
            outcome.append(exc)

    thread = threading.Thread(target=check, daemon=True)
    thread.start()
    pid = helper_pid(monitor)
    time.sleep(1.0)  # well into its work (spawned, imports done or underway)
    monitor.close()
    assert wait_gone(pid, 10), "the Evidently process outlived Monitor.close()"
    thread.join(30)
    assert outcome and isinstance(outcome[0], BaseException), outcome


SERVER = textwrap.dedent("""
    import sys, threading, time
    import pandas as pd
    from pathlib import Path
    from prometheus_client import CollectorRegistry
    from housing.data import load_reference, load_split
    from housing.monitoring.job import Monitor
    from housing.monitoring.metrics import build_monitoring_metrics
    from housing.monitoring.settings import MonitoringSettings
    from housing.service import log

    data_dir, database = Path(sys.argv[1]), sys.argv[2]
    monitor = Monitor(
        log.create_log_engine(f"sqlite:///{database}"),
        MonitoringSettings(data_dir=data_dir),
        build_monitoring_metrics(CollectorRegistry()),
    )
    current = pd.concat([load_split(data_dir)[1]] * 10, ignore_index=True)
    reference = load_reference(data_dir)
    threading.Thread(target=monitor._detect, args=(reference, current), daemon=True).start()
    while not (monitor._executor and monitor._executor._processes):
        time.sleep(0.05)
    print(next(iter(monitor._executor._processes.values())).pid, flush=True)
    time.sleep(600)
""")


def test_the_evidently_process_exits_when_the_server_is_killed(
    prepared_data_dir: Path, tmp_path: Path
) -> None:
    server = subprocess.Popen(  # noqa: S603 (this interpreter, our own script)
        [sys.executable, "-c", SERVER, str(prepared_data_dir), str(tmp_path / "log.db")],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert server.stdout is not None
        pid = int(server.stdout.readline())
        assert not gone(pid)
        time.sleep(1.0)  # the helper is working on the check
        server.send_signal(signal.SIGKILL)  # no shutdown: nothing can stop the helper
        server.wait(10)
        assert wait_gone(pid, 5 * PARENT_CHECK_SECONDS + 5), "an orphaned Evidently process"
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(10)
