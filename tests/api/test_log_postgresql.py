"""The prediction log on a real PostgreSQL (what several replicas share): a throwaway cluster
in a temporary folder (initdb + pg_ctl on a free loopback port), the service's migrations, every
kind of row, hostile text PostgreSQL refuses (NUL), one feedback per prediction, reads back."""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import shutil
import socket
import subprocess  # nosec B404 - starts PostgreSQL's own tools
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from service_tools import API_KEY, feedback_row, settings_for

from api.main import create_app
from housing.features import typical_row
from housing.service import log as prediction_log

pytestmark = [pytest.mark.integration]

USER = "housing"


def _pg_tool(name: str) -> str:
    """A PostgreSQL server program: on the PATH, or where Debian's packages put it."""
    found = shutil.which(name) or next(
        (str(p) for p in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)),
        None,
    )
    if found is None:
        pytest.fail(f"PostgreSQL's {name} not found: run scripts/system-deps.sh (make system-deps)")
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_server_user(folder: Path) -> list[str]:
    """The command prefix that runs PostgreSQL unprivileged (initdb refuses root), after
    handing ``folder`` to that user; nothing when the tests do not run as root."""
    if os.geteuid() != 0:
        return []
    nobody = pwd.getpwnam("nobody")
    os.chown(folder, nobody.pw_uid, nobody.pw_gid)
    uid, gid = f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}"
    return [shutil.which("setpriv") or "setpriv", uid, gid, "--clear-groups"]


def _run(command: list[str], cwd: Path) -> None:
    done = subprocess.run(  # noqa: S603 (PostgreSQL's tools, fixed arguments)
        command, cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"{command[-1]} failed ({done.returncode}): {done.stdout}{done.stderr}")


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """SQLAlchemy URL of a superuser on a fresh cluster (fsync off: it is thrown away)."""
    folder = Path(tempfile.mkdtemp(prefix="housing-pg-"))  # not under pytest's 0700 folders
    data, port = folder / "data", _free_port()
    prefix = _as_server_user(folder)
    initdb = [_pg_tool("initdb"), "-D", str(data), "-U", USER, "--auth=trust"]
    _run([*prefix, *initdb, "--encoding=UTF8", "--locale=C", "--no-sync"], folder)
    options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories='' -c fsync=off"
    pg_ctl = [*prefix, _pg_tool("pg_ctl"), "-D", str(data), "-l", str(folder / "server.log")]
    _run([*pg_ctl, "-w", "-t", "30", "-o", options, "start"], folder)
    try:
        yield f"postgresql+psycopg://{USER}@127.0.0.1:{port}"
    finally:
        _run([*pg_ctl, "-m", "fast", "-w", "stop"], folder)
        shutil.rmtree(folder, ignore_errors=True)


def _database(server: str, name: str) -> str:
    """A new empty database on the cluster; its URL."""
    admin = sa.create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return f"{server}/{name}"


@pytest.fixture(scope="module")
def engine(postgres: str) -> Iterator[sa.Engine]:
    engine = prediction_log.create_log_engine(_database(postgres, "log"))
    prediction_log.migrate(engine)
    prediction_log.migrate(engine)  # idempotent
    yield engine
    engine.dispose()


def test_of_replicas_racing_for_the_drift_lease_exactly_one_wins(engine: sa.Engine) -> None:
    """Replicas sharing this log each claim the interval's drift check at the same instant:
    PostgreSQL's row lock lets one conditional UPDATE through per interval."""
    from concurrent.futures import ThreadPoolExecutor
    from datetime import UTC, datetime, timedelta

    from housing.monitoring import store

    replicas = [sa.create_engine(engine.url) for _ in range(6)]
    start = datetime(2026, 12, 1, tzinfo=UTC)
    try:
        with ThreadPoolExecutor(len(replicas)) as pool:
            for round_ in range(10):
                now = start + timedelta(minutes=round_)
                claims = list(
                    pool.map(
                        lambda i: store.claim_drift_check(replicas[i], f"pod-{i}", now, 30),
                        range(len(replicas)),
                    )
                )
                assert claims.count(True) == 1, f"round {round_}: {claims}"
                assert store.lease_holder(engine) == (f"pod-{claims.index(True)}", now)
    finally:
        for replica in replicas:
            replica.dispose()


def test_migrations_build_the_whole_schema(engine: sa.Engine) -> None:
    inspector = sa.inspect(engine)
    tables = {"prediction_log", "service_heartbeat", "drift_runs", "drift_reports", "drift_lease"}
    tables |= {"log_archive", "log_retention_lease"}
    assert tables <= set(inspector.get_table_names())
    unique = {i["name"]: i["unique"] for i in inspector.get_indexes("prediction_log")}
    assert unique["ux_prediction_log_feedback_key"]
    prediction_log.probe(engine)


HOSTILE = {
    "nul-in-raw-body": {"raw_body": prediction_log.raw_text(b'{"MedInc": "\x00\xff"}')},
    "nul-in-json": {"inputs": {"MedInc": "\x00", "\x00": ["a\x00b"]}, "error": "bad \x00"},
    "lone-surrogate": {
        "inputs": {"MedInc": "\ud800"},
        "raw_body": prediction_log.raw_text("\udc00"),
    },
    "huge-integer": {"inputs": {"Population": 10**30, "Extra": -(10**400)}},
    "deeply-nested": {"inputs": {"MedInc": json.loads("[" * 400 + "]" * 400)}},
}


def test_hostile_text_shares_a_commit_with_valid_rows_and_reads_back(engine: sa.Engine) -> None:
    valid = prediction_log.new_row("/predict", status=200, inputs=typical_row(), latency_ms=1.0)
    hostile = {
        name: prediction_log.new_row("/predict", status=422, latency_ms=1.0, **values)
        for name, values in HOSTILE.items()
    }
    prediction_log.write_rows(engine, [valid, *hostile.values()])

    stored = {row["id"]: row for row in prediction_log.page(engine, limit=100)}
    assert stored[valid["id"]]["inputs"] == typical_row()
    read = {name: stored[row["id"]] for name, row in hostile.items()}
    assert read["nul-in-raw-body"]["raw_body"] == '{"MedInc": "␀\ufffd"}'
    assert read["nul-in-json"]["inputs"] == {"MedInc": "␀", "␀": ["a␀b"]}
    assert read["nul-in-json"]["error"] == "bad ␀"
    assert read["lone-surrogate"]["inputs"] == {"MedInc": "?"}
    assert read["lone-surrogate"]["raw_body"] == "?"
    assert read["huge-integer"]["inputs"]["Population"] == pytest.approx(1e30)
    with engine.connect() as connection:  # PostgreSQL can read every logged JSON string as text
        texts = connection.execute(
            sa.text("SELECT inputs->>'MedInc' FROM prediction_log WHERE id = :id"),
            {"id": hostile["nul-in-json"]["id"]},
        )
        assert texts.scalar_one() == "␀"


def test_one_feedback_per_prediction_in_a_shared_commit(engine: sa.Engine) -> None:
    taken, fresh = "1" * 32, "2" * 32
    prediction_log.write_rows(engine, [feedback_row(taken, 1.0)])
    predict = prediction_log.new_row("/predict", status=200, inputs=typical_row(), latency_ms=1.0)
    batch = [feedback_row(taken, 2.0), predict, feedback_row(fresh, 3.0)]
    batch.append(feedback_row(fresh, 4.0))
    prediction_log.write_rows(engine, batch)
    assert [row["status"] for row in batch] == [409, 200, 200, 409]
    stored = {row["id"]: row["status"] for row in prediction_log.page(engine, limit=100)}
    assert [stored[row["id"]] for row in batch] == [409, 200, 200, 409]
    actuals = prediction_log.labelled_predictions(engine, 10).set_index("prediction_id")["actual"]
    assert actuals[[taken, fresh]].tolist() == [1.0, 3.0]


@pytest.fixture(scope="module")
def client(
    postgres: str, trained_registry: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    """The service with its log on PostgreSQL (everything else as in the other API tests)."""
    settings = settings_for(
        trained_registry,
        tmp_path_factory.mktemp("api-postgres"),
        database_url=_database(postgres, "service"),
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _together(client: TestClient, requests: list[tuple[str, dict]]) -> list[httpx.Response]:
    """POST every (path, request kwargs) at once on the app's own loop (they share batches)."""

    async def send() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
            return await asyncio.gather(*(http.post(path, **kw) for path, kw in requests))

    return client.portal.call(send)


NUL_BODY = b'{"MedInc": "\x00", "HouseAge": 20}'
"""A raw NUL inside a JSON string: not JSON, so logged as ``raw_body`` text."""


def test_the_service_logs_every_request_on_postgresql(client: TestClient) -> None:
    assert client.get("/ready").status_code == 200, client.get("/ready").text
    single = client.post("/predict", json=typical_row())
    houses = [typical_row(), dict(typical_row(), Latitude=99.0)]
    batch = client.post("/predict/batch", json={"houses": houses})
    assert single.status_code == batch.status_code == 200, (single.text, batch.text)

    valid = [("/predict", {"json": dict(typical_row(), HouseAge=float(age))}) for age in range(6)]
    hostile = [
        ("/predict", {"content": NUL_BODY, "headers": {"content-type": "application/json"}}),
        ("/predict", {"json": dict(typical_row(), MedInc="\x00")}),
    ]
    mixed = _together(client, [*valid[:3], *hostile, *valid[3:]])
    assert [r.status_code for r in mixed] == [200] * 3 + [422, 422] + [200] * 3

    prediction_id = single.json()["prediction_id"]
    body = {"prediction_id": prediction_id, "feedback_token": single.json()["feedback_token"]}
    feedback = _together(
        client, [("/feedback", {"json": dict(body, actual=1.0 + a / 2)}) for a in range(6)]
    )
    assert Counter(r.status_code for r in feedback) == {200: 1, 409: 5}

    answered = [single, batch, *mixed, *feedback]
    logged: dict[str, dict] = {}
    offset: int | None = 0
    while offset is not None:  # every row back through GET /predictions
        page = client.get(
            "/predictions", params={"limit": 50, "offset": offset}, headers={"X-API-Key": API_KEY}
        )
        assert page.status_code == 200, page.text
        logged.update((item["id"], item) for item in page.json()["items"])
        offset = page.json()["next_offset"]
    for response in answered:
        assert logged[response.headers["X-Request-ID"]]["status"] == response.status_code
    nul = logged[mixed[3].headers["X-Request-ID"]]
    assert nul["raw_body"] == NUL_BODY.decode().replace("\x00", "␀")
    assert logged[mixed[4].headers["X-Request-ID"]]["inputs"]["MedInc"] == "␀"
    assert logged[batch.headers["X-Request-ID"]]["predictions"][1] is None


def test_a_read_past_the_time_limit_is_stopped_by_statement_timeout(postgres: str) -> None:
    import time

    url = _database(postgres, "timed")
    engine = prediction_log.create_log_engine(url, read_time_limit=0.2)
    prediction_log.migrate(engine)
    started = time.monotonic()
    with pytest.raises(prediction_log.LogReadTimeoutError, match="longer than 0.2 s"):
        with prediction_log.reading(engine) as connection:
            connection.exec_driver_sql("SELECT pg_sleep(5)")
    assert time.monotonic() - started < 3
    assert prediction_log.page(engine, limit=5) == []  # the next read runs normally
    engine.dispose()


def test_indexes_cursor_paging_and_a_purge_with_its_archive_on_postgresql(
    postgres: str, tmp_path: Path
) -> None:
    from datetime import UTC, datetime, timedelta

    from housing.service import retention

    engine = prediction_log.create_log_engine(_database(postgres, "retention"))
    prediction_log.migrate(engine)
    names = {i["name"] for i in sa.inspect(engine).get_indexes("prediction_log")}
    assert {"ix_prediction_log_status_created_at", "ix_prediction_log_endpoint_created_at"} <= names
    now = datetime(2026, 12, 4, 12, tzinfo=UTC)

    def at(days: float) -> dict:
        row = prediction_log.new_row("/predict", status=200, inputs=typical_row(), latency_ms=1.0)
        return dict(row, created_at=now - timedelta(days=days))

    old, young, labelled = [at(100), at(95)], [at(10), at(1)], at(99)
    label = dict(feedback_row(labelled["id"], 2.0), created_at=now - timedelta(days=98))
    prediction_log.write_rows(engine, [*old, *young, labelled, label])
    ids, before = [], None
    while True:
        page = prediction_log.page(engine, limit=2, before=before)
        ids += [row["id"] for row in page]
        if len(page) < 2:
            break
        before = (page[-1]["created_at"], page[-1]["id"])
    assert sorted(ids) == sorted(r["id"] for r in [*old, *young, labelled, label])

    settings = retention.RetentionSettings(archive_dir=tmp_path, batch_pause_seconds=0)
    result = retention.purge(engine, settings, now)
    kept = {row["id"] for row in prediction_log.page(engine, limit=10)}
    assert kept == {r["id"] for r in [*young, labelled, label]}
    assert result.deleted == 2
    archived = retention.read_archive(tmp_path)["id"].to_pylist()
    assert sorted(archived) == sorted(r["id"] for r in [*old, labelled, label])
    assert retention.stats(engine).rows == 4
    engine.dispose()
