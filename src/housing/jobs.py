"""Retraining jobs: one at a time, in a child process, each with a JSON record on disk.

Training is CPU-heavy, so the API never trains in its own process: it starts
`python -m housing.cli retrain --json --job ID` (at lower CPU priority) and answers at once.
The child writes its record (``running``, then ``succeeded`` with the result or ``failed`` with
the reason) to ``<jobs_dir>/<id>.json``, so every API worker, the CLI and the UI read the same
state. "One at a time" is an exclusive OS lock (``flock`` on Unix, ``LockFileEx`` on Windows,
through filelock) on ``<jobs_dir>/retrain.lock``, held by the process that runs the retrain until
its record is final or it dies, whatever happens to the API. Windows locks do not pass to a
child, so the API hands over instead: it holds a second lock, the start gate
(``retrain.gate.lock``), from checking the run lock free until its child holds it; every other
starter takes the gate first, so nothing slips in between. An alert-triggered retrain also
respects a cool-down measured from the last alert's job.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import subprocess  # nosec B404
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from filelock import lock_descriptor, unlock_descriptor
from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from housing.fileio import atomic_write_text

log = logging.getLogger(__name__)

LOCK_FILE = "retrain.lock"
"""Held by the process running a retrain."""
GATE_FILE = "retrain.gate.lock"
"""Held while a retrain is being started: taking the run lock, or handing it to a child."""
OWNER_FILE = "retrain.owner"
"""The job id of the latest lock holder (Windows denies reading a locked file, so not in it)."""
HANDOFF_ENV = "HOUSING_RETRAIN_HANDOFF"
"""Set by the API for its child (the job id): the API holds the gate for it while it starts."""
HANDOFF_POLL = 0.05
HANDOFF_WAIT = 10.0
"""How long a child retries the run lock (the API's check for it holds it for an instant)."""
JOB_ID = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$")
FINAL = ("succeeded", "failed")
RETRAIN_LABEL = ("action", "retrain")
"""Alerts carrying this label start a retrain (monitoring/alert_rules.yml: HousingDataDrift)."""
LOG_TAIL = 2000

Trigger = Literal["api", "alert", "cli"]
Status = Literal["queued", "running", "succeeded", "failed"]


class RetrainSettings(BaseSettings):
    """Where job records live, the alert cool-down and the child's limits (``HOUSING_*``)."""

    model_config = SettingsConfigDict(env_prefix="HOUSING_", extra="ignore")

    jobs_dir: Path = Path("var/jobs")
    retrain_cooldown_seconds: float = Field(3600.0, ge=0)
    """An alert starts no retrain within this long of the last alert-started one."""
    retrain_timeout_seconds: float = Field(3600.0, gt=0)
    """A retrain still running after this long is killed and marked failed."""
    retrain_feedback_limit: int = Field(100_000, ge=0)
    """At most this many of the newest labelled predictions join a retrain."""
    retrain_nice: int = Field(10, ge=0, le=19)
    """CPU niceness of the retraining child, so the API keeps answering quickly."""
    retrain_anonymous_feedback: bool = False
    """Train on feedback sent without a labeller or admin key too. Risky: anyone who can reach
    /feedback can then steer the model (labels are only checked to be in range)."""
    auto_promote_alert_retrains: bool = False
    """Let a retrain started by an alert promote its candidate without an admin's approval."""


@lru_cache
def get_retrain_settings() -> RetrainSettings:
    """The process-wide retraining settings (tests clear the cache)."""
    return RetrainSettings()


class JobRecord(BaseModel):
    """One retraining job as stored and as ``GET /admin/jobs/{id}`` returns it."""

    id: str
    trigger: Trigger
    status: Status
    requested_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    pid: int | None = None
    batches: list[str] | None = None
    """Batch ids the retrain uses (None: every stored batch)."""
    feedback: bool = True
    """Whether the prediction log's labelled feedback joins the training data."""
    alert: dict[str, Any] | None = None
    """For alert-started jobs: the alert's name, labels and start time."""
    result: dict[str, Any] | None = None
    """At the end: candidates' metrics, the gate's decision, the data used (``housing.retrain``)."""
    error: str | None = None


class JobBusyError(RuntimeError):
    """A retrain is running already (``job_id`` says which, when known)."""

    def __init__(self, job_id: str | None) -> None:
        self.job_id = job_id
        super().__init__(f"a retrain is running already (job {job_id or 'unknown'})")


def now() -> datetime:
    return datetime.now(UTC)


def new_job_id(at: datetime | None = None) -> str:
    """Sortable by time: ``20250101T120000Z-1a2b3c4d``."""
    return f"{(at or now()):%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def job_path(jobs_dir: Path, job_id: str) -> Path:
    """The record's file; ``ValueError`` for anything that is not a job id (no path tricks)."""
    if not JOB_ID.match(job_id):
        raise ValueError(f"not a job id: {job_id!r}")
    return Path(jobs_dir) / f"{job_id}.json"


def write_job(jobs_dir: Path, record: JobRecord) -> None:
    atomic_write_text(job_path(jobs_dir, record.id), record.model_dump_json(indent=2) + "\n")


def read_job(jobs_dir: Path, job_id: str) -> JobRecord | None:
    """The record, or None when there is no such job."""
    path = job_path(jobs_dir, job_id)
    try:
        return JobRecord.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def list_jobs(jobs_dir: Path, limit: int = 20) -> list[JobRecord]:
    """The newest ``limit`` records, newest first."""
    folder = Path(jobs_dir)
    if not folder.is_dir():
        return []
    ids = sorted((p.stem for p in folder.glob("*.json") if JOB_ID.match(p.stem)), reverse=True)
    records = (read_job(folder, job_id) for job_id in ids[:limit])
    return [record for record in records if record is not None]


def update_job(jobs_dir: Path, job_id: str, **changes: Any) -> JobRecord:
    """Rewrite a record with ``changes`` (only its own job's process writes it at a time)."""
    record = read_job(jobs_dir, job_id)
    if record is None:
        raise ValueError(f"no job {job_id} in {jobs_dir}")
    updated = record.model_copy(update=changes)
    write_job(jobs_dir, updated)
    return updated


# --- one at a time -------------------------------------------------------------------------


def _take(path: Path) -> int | None:
    """Open ``path`` and take its exclusive lock without waiting; the descriptor, or None."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if lock_descriptor(fd, blocking=False):
            return fd
    except BaseException:
        os.close(fd)
        raise
    os.close(fd)
    return None


def release(fd: int) -> None:
    """Unlock and close a descriptor from ``try_lock`` or ``reserve`` (Windows may free a lock
    only some time after its handle closes, so unlock explicitly first)."""
    with contextlib.suppress(OSError):
        unlock_descriptor(fd)
    with contextlib.suppress(OSError):
        os.close(fd)


def _set_owner(folder: Path, owner: str) -> None:
    # A plain write, not a rename over the file: Windows refuses to replace a file a reader has
    # open. A reader racing it sees no owner ("unknown"), which only words the 409 vaguer.
    (folder / OWNER_FILE).write_text(owner, encoding="utf-8")


def try_lock(jobs_dir: Path, owner: str) -> int | None:
    """Take the retrain lock without waiting (through the gate); its descriptor, or None when
    a retrain runs or is being started."""
    folder = Path(jobs_dir)
    folder.mkdir(parents=True, exist_ok=True)
    gate = _take(folder / GATE_FILE)
    if gate is None:
        return None
    try:
        fd = _take(folder / LOCK_FILE)
        if fd is not None:
            _set_owner(folder, owner)
        return fd
    finally:
        release(gate)


def reserve(jobs_dir: Path, owner: str) -> int | None:
    """Take the gate, with the retrain lock checked free, for a child to take that lock; the
    gate's descriptor (release it once the child holds the lock), or None when busy."""
    folder = Path(jobs_dir)
    folder.mkdir(parents=True, exist_ok=True)
    gate = _take(folder / GATE_FILE)
    if gate is None:
        return None
    try:
        probe = _take(folder / LOCK_FILE)
        if probe is None:
            release(gate)
            return None
        release(probe)
        _set_owner(folder, owner)
    except BaseException:
        release(gate)
        raise
    return gate


def is_locked(jobs_dir: Path) -> bool:
    """Whether some process holds the retrain lock (checked by taking it for an instant)."""
    fd = _take(Path(jobs_dir) / LOCK_FILE)
    if fd is None:
        return True
    release(fd)
    return False


def handed_over_lock(jobs_dir: Path, job_id: str) -> int | None:
    """The retrain lock for the job the API started this process for (``HANDOFF_ENV``), taken
    while the API holds the gate; None when this process is not that child or cannot take it."""
    if os.environ.get(HANDOFF_ENV) != job_id:
        return None
    path = Path(jobs_dir) / LOCK_FILE
    deadline = time.monotonic() + HANDOFF_WAIT
    while (fd := _take(path)) is None and time.monotonic() < deadline:
        time.sleep(HANDOFF_POLL)
    return fd


def lock_owner(jobs_dir: Path) -> str | None:
    """The job id written by whoever holds (or last held) the lock."""
    try:
        return (Path(jobs_dir) / OWNER_FILE).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


# --- alerts ----------------------------------------------------------------------------------


def retrain_alerts(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The firing alerts of an Alertmanager webhook payload that ask for a retrain."""
    key, value = RETRAIN_LABEL
    alerts = payload.get("alerts") or []
    return [
        alert
        for alert in alerts
        if isinstance(alert, dict)
        and alert.get("status") == "firing"
        and (alert.get("labels") or {}).get(key) == value
    ]


def cooldown_left(jobs: Sequence[JobRecord], at: datetime, cooldown_seconds: float) -> float:
    """Seconds until an alert may start another retrain (0: it may now)."""
    started = [job.requested_at for job in jobs if job.trigger == "alert"]
    if not started:
        return 0.0
    return max(0.0, cooldown_seconds - (at - max(started)).total_seconds())


class AlertOutcome(BaseModel):
    """What an alert notification did: started a job, or why not."""

    started: bool
    reason: str
    job: JobRecord | None = None


# --- the runner (in the API process) ---------------------------------------------------------


class JobRunner:
    """Starts retraining children and watches them; one per API process."""

    def __init__(
        self,
        settings: RetrainSettings,
        env: Mapping[str, str],
        on_champion_changed: Callable[[], Any],
        command: Sequence[str] | None = None,
    ) -> None:
        self.settings = settings
        self.env = dict(env)
        self.on_champion_changed = on_champion_changed
        self.command = list(command or [sys.executable, "-m", "housing.cli", "retrain", "--json"])
        self._guard = threading.Lock()
        self._watchers: list[threading.Thread] = []

    @property
    def jobs_dir(self) -> Path:
        return self.settings.jobs_dir

    def start(
        self,
        trigger: Trigger,
        batches: Sequence[str] | None = None,
        feedback: bool = True,
        alert: dict[str, Any] | None = None,
    ) -> JobRecord:
        """Start a retrain in a child process; ``JobBusyError`` while one runs."""
        record = JobRecord(
            id=new_job_id(),
            trigger=trigger,
            status="queued",
            requested_at=now(),
            batches=None if batches is None else list(batches),
            feedback=feedback,
            alert=alert,
        )
        gate = reserve(self.jobs_dir, record.id)
        if gate is None:
            raise JobBusyError(lock_owner(self.jobs_dir))
        try:
            write_job(self.jobs_dir, record)
            process, output = self._spawn(record)
            watcher = threading.Thread(
                target=self._watch,
                args=(record.id, process, output, gate),
                name=f"job-{record.id}",
            )
            watcher.daemon = True
            watcher.start()  # it releases the gate once the child holds the lock
        except BaseException:
            release(gate)
            raise
        self._watchers.append(watcher)
        log.info("retrain job %s started (%s, pid %d)", record.id, trigger, process.pid)
        return record

    def start_for_alert(self, payload: Mapping[str, Any]) -> AlertOutcome:
        """Start a retrain for a firing retrain alert, unless cooling down or busy."""
        alerts = retrain_alerts(payload)
        if not alerts:
            return AlertOutcome(started=False, reason="no firing alert asks for a retrain")
        first = alerts[0]
        alert = {
            "alertname": (first.get("labels") or {}).get("alertname"),
            "labels": first.get("labels") or {},
            "startsAt": first.get("startsAt"),
            "fingerprint": first.get("fingerprint"),
        }
        with self._guard:  # two notifications at once: one check-then-start at a time
            left = cooldown_left(list_jobs(self.jobs_dir, 200), now(), self.cooldown)
            if left > 0:
                reason = f"cooling down: {left:.0f} s left since the last alert-started retrain"
                return AlertOutcome(started=False, reason=reason)
            try:
                job = self.start("alert", alert=alert)
            except JobBusyError as exc:
                return AlertOutcome(started=False, reason=str(exc))
        return AlertOutcome(
            started=True, reason=f"retrain started for {alert['alertname']}", job=job
        )

    @property
    def cooldown(self) -> float:
        return self.settings.retrain_cooldown_seconds

    def _spawn(self, record: JobRecord) -> tuple[subprocess.Popen, Any]:
        output = (self.jobs_dir / f"{record.id}.log").open("ab")
        env = {**os.environ, **self.env, HANDOFF_ENV: record.id}
        detach: dict[str, Any]
        if sys.platform == "win32":
            # No sessions here: a new process group keeps the console's Ctrl-C away from it, and
            # without os.nice for the child to call, it starts at a lower priority instead.
            flags = subprocess.CREATE_NEW_PROCESS_GROUP
            if self.settings.retrain_nice > 0:
                flags |= subprocess.BELOW_NORMAL_PRIORITY_CLASS
            detach = {"creationflags": flags}
        else:
            detach = {"start_new_session": True}  # a Ctrl-C to the server does not kill a retrain
        try:
            process = subprocess.Popen(  # nosec B603
                [*self.command, "--job", record.id],
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                **detach,
            )
        except BaseException:
            output.close()
            raise
        return process, output

    def _watch(self, job_id: str, process: subprocess.Popen, output: Any, gate: int) -> None:
        """Hand the lock over; reap the child; make sure its record ends final; reload if the
        champion moved."""
        deadline = time.monotonic() + self.settings.retrain_timeout_seconds
        try:
            try:
                self._hand_over(process, deadline)
            finally:
                release(gate)
            try:
                code = process.wait(timeout=max(0.0, deadline - time.monotonic()))
                reason = f"the retrain process exited with code {code}"
            except subprocess.TimeoutExpired:
                process.kill()
                code = process.wait()
                reason = f"timed out after {self.settings.retrain_timeout_seconds:g} s"
        finally:
            output.close()
        record = read_job(self.jobs_dir, job_id)
        if record is not None and record.status not in FINAL:
            tail = self._log_tail(job_id)
            update_job(
                self.jobs_dir, job_id, status="failed", finished_at=now(), error=f"{reason}{tail}"
            )
            log.error("retrain job %s failed: %s", job_id, reason)
            return
        if record is not None and (record.result or {}).get("champion_changed"):
            log.info("retrain job %s moved the champion: reloading", job_id)
            try:
                self.on_champion_changed()
            except Exception:  # the poller retries; a failed reload is logged and counted
                log.exception("reload after retrain job %s failed", job_id)

    def _hand_over(self, process: subprocess.Popen, deadline: float) -> None:
        """Wait until the child holds the retrain lock (nobody else can take it while this
        process holds the gate), has exited, or has run out of time."""
        while process.poll() is None and time.monotonic() < deadline:
            if is_locked(self.jobs_dir):
                return
            time.sleep(HANDOFF_POLL)

    def _log_tail(self, job_id: str) -> str:
        try:
            text = (self.jobs_dir / f"{job_id}.log").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        text = text.strip()[-LOG_TAIL:]
        return f": {text.splitlines()[-1]}" if text else ""

    def join(self, timeout: float | None = None) -> None:
        """Wait for the watched jobs (tests and shutdown)."""
        for watcher in self._watchers:
            watcher.join(timeout)


# --- the job itself (in the child process) ---------------------------------------------------


def execute(
    jobs_dir: Path,
    job_id: str | None,
    work: Callable[[JobRecord], dict[str, Any]],
    *,
    batches: Sequence[str] | None = None,
    feedback: bool = True,
) -> JobRecord:
    """Run ``work`` as job ``job_id`` (None: a new `cli` job with ``batches``/``feedback``),
    keeping its record current; ``JobBusyError`` if another retrain holds the lock.

    Exceptions from ``work`` mark the job failed (with the message) and propagate.
    """
    fd = handed_over_lock(jobs_dir, job_id) if job_id is not None else None
    if fd is None:
        job_id = job_id or new_job_id()
        fd = try_lock(jobs_dir, job_id)
        if fd is None:
            raise JobBusyError(lock_owner(jobs_dir))
    try:
        if read_job(jobs_dir, job_id) is None:
            write_job(
                jobs_dir,
                JobRecord(
                    id=job_id,
                    trigger="cli",
                    status="queued",
                    requested_at=now(),
                    batches=None if batches is None else list(batches),
                    feedback=feedback,
                ),
            )
        record = update_job(jobs_dir, job_id, status="running", started_at=now(), pid=os.getpid())
        try:
            result = work(record)
        except BaseException as exc:
            message = str(exc) or type(exc).__name__
            update_job(jobs_dir, job_id, status="failed", finished_at=now(), error=message)
            raise
        return update_job(jobs_dir, job_id, status="succeeded", finished_at=now(), result=result)
    finally:
        # Release the lock as soon as the record is final (not when the process exits,
        # seconds later): a new job may start once this one reads as finished.
        release(fd)
