"""Hostile input against a live server: schemathesis over every operation (>= 1,000 cases, no
5xx), and hand-made nasties (oversized, deeply nested, NaN/Infinity, huge numbers, unicode,
wrong content types) that must each get a clear 4xx and a row in the log; hostile CSV uploads
(with the admin key, so the parser sees them) that must each get a clear 4xx and store nothing."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from reliability_harness import (
    API_KEY,
    BIN,
    Hammer,
    Request,
    Service,
    log_rows,
    running_service,
    service_env,
)

from housing import batches
from housing.data import COLUMNS
from housing.features import FEATURE_NAMES, typical_row

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MAX_BODY = 1_048_576
"""The service's default limit (room for a 100,000-column CSV header)."""
MIN_CASES = 1000
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def service_data(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The service's own copy of the prepared data: uploads must not reach the shared one."""
    copy = tmp_path_factory.mktemp("hostile-data") / "data"
    shutil.copytree(data_dir, copy)
    return copy


@pytest.fixture(scope="module")
def service(
    trained_registry: str, service_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    workdir = tmp_path_factory.mktemp("hostile")
    env = service_env(
        trained_registry,
        workdir / "log.db",
        service_data,
        HOUSING_MAX_BODY_BYTES=str(MAX_BODY),
        HOUSING_RELOAD_INTERVAL_SECONDS="3600",
    )
    with running_service(env, workdir) as running:
        yield running


def _house_text(**replace: str) -> bytes:
    """A typical house as JSON text, with some values replaced by raw JSON tokens."""
    values = {name: json.dumps(value) for name, value in typical_row().items()}
    values.update(replace)
    return ("{" + ", ".join(f'"{k}": {v}' for k, v in values.items()) + "}").encode()


def _nested(depth: int) -> bytes:
    return b'{"MedInc": ' + b"[" * depth + b"]" * depth + b"}"


def _chunks(size: int) -> Iterator[bytes]:
    """A body with no Content-Length (chunked), so only the bytes received can be counted."""
    for _ in range(size // 8192 + 1):
        yield b" " * 8192


FIELD = FEATURE_NAMES[0]
HOSTILE: dict[str, tuple[str, bytes | Callable[[], Iterator[bytes]], dict[str, str], str]] = {
    # name: (path, body, headers, a phrase the answer must contain)
    "oversized": ("/predict", b" " * (MAX_BODY + 1), JSON, "HOUSING_MAX_BODY_BYTES"),
    "oversized-chunked": ("/predict", lambda: _chunks(MAX_BODY * 2), JSON, "larger than"),
    "nested-300": ("/predict", _nested(300), JSON, FIELD),
    "nested-900": ("/predict", _nested(900), JSON, FIELD),
    "nested-20000": ("/predict", _nested(20_000), JSON, "body"),
    "nan": ("/predict", _house_text(MedInc="NaN"), JSON, "finite"),
    "infinity": ("/predict", _house_text(MedInc="Infinity"), JSON, "finite"),
    "minus-infinity": ("/predict", _house_text(HouseAge="-Infinity"), JSON, "finite"),
    "1e309": ("/predict", _house_text(MedInc="1e309"), JSON, "finite"),
    "huge-integer": ("/predict", _house_text(Population="1" + "0" * 30), JSON, "Population"),
    "huge-integer-unknown-field": (
        "/predict",
        _house_text(**{"Extra": "-" + "9" * 40}),
        JSON,
        "unknown field",
    ),
    "unicode-field": ("/predict", _house_text(**{"MédInc": "1"}), JSON, "unknown field"),
    "fullwidth-digits": ("/predict", _house_text(MedInc='"３.５"'), JSON, "number"),
    "emoji": ("/predict", _house_text(MedInc='"🏠"'), JSON, "number"),
    "lone-surrogate-value": ("/predict", _house_text(MedInc='"\\ud800"'), JSON, "number"),
    "lone-surrogate-key": ("/predict", _house_text(**{"\\udc00": '"x"'}), JSON, "unicode"),
    "nul-character": ("/predict", _house_text(MedInc='"\\u0000"'), JSON, "number"),
    "nul-byte": ("/predict", _house_text(MedInc='"\x00"'), JSON, "JSON"),
    "invalid-utf8": ("/predict", b'{"MedInc": "\xff\xfe"}', JSON, "body"),
    "truncated": ("/predict", b'{"MedInc": 3', JSON, "JSON"),
    "empty": ("/predict", b"", JSON, "body"),
    "null": ("/predict", b"null", JSON, "body"),
    "array": ("/predict", b"[1, 2]", JSON, "body"),
    "bare-number": ("/predict", b"5", JSON, "body"),
    "bare-float": ("/predict/batch", b"-1.5e3", JSON, "body"),
    "text-plain": ("/predict", _house_text(), {"content-type": "text/plain"}, "body"),
    "form": (
        "/predict",
        b"MedInc=3&HouseAge=20",
        {"content-type": "application/x-www-form-urlencoded"},
        "body",
    ),
    "xml": (
        "/predict",
        b"<house><MedInc>3</MedInc></house>",
        {"content-type": "application/xml"},
        "body",
    ),
    "no-content-type": ("/predict", _house_text(), {}, "body"),
    "batch-too-many": (
        "/predict/batch",
        json.dumps({"houses": [{}] * 1001}).encode(),
        JSON,
        "houses",
    ),
    "batch-not-a-list": ("/predict/batch", b'{"houses": {"a": 1}}', JSON, "houses"),
    "feedback-nan": (
        "/feedback",
        b'{"prediction_id": "' + b"a" * 32 + b'", "actual": NaN}',
        JSON,
        "finite",
    ),
    "feedback-bad-id": (
        "/feedback",
        b'{"prediction_id": "../../etc", "actual": 1.0}',
        JSON,
        "prediction_id",
    ),
}
"""Each must get a 4xx whose ``detail`` says what is wrong, and be logged with that status."""


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_request_gets_a_clear_4xx_and_is_logged(service: Service, name: str) -> None:
    path, body, headers, phrase = HOSTILE[name]
    content = body() if callable(body) else body
    with service.client() as client:
        response = client.post(path, content=content, headers=headers)
    assert 400 <= response.status_code < 500, response.text[:500]
    assert "Traceback" not in response.text
    detail = response.json()["detail"]
    assert detail, response.text
    assert phrase in json.dumps(detail, ensure_ascii=False), detail
    if isinstance(detail, list):  # a 422 names each field and rule in plain words
        assert all(item["field"] and item["rule"] and item["message"] for item in detail)
    request_id = response.headers.get("X-Request-ID")
    assert request_id, "the answer carries no id to find its log row by"
    rows = log_rows(service.database, "id = ?", (request_id,))
    assert [(row["endpoint"], row["status"]) for row in rows] == [(path, response.status_code)]
    assert rows[0]["error"]


def test_the_log_stays_readable_after_hostile_input(service: Service) -> None:
    """GET /predictions pages through every row the hostile requests left."""
    for path, body, headers, _ in HOSTILE.values():
        if not callable(body):
            with service.client() as client:
                client.post(path, content=body, headers=headers)
    rows = len(log_rows(service.database))
    seen, offset = 0, 0
    with service.client() as client:
        while offset is not None:
            page = client.get(
                "/predictions",
                params={"limit": 50, "offset": offset},
                headers={"X-API-Key": API_KEY},
            )
            assert page.status_code == 200, page.text
            seen += len(page.json()["items"])
            offset = page.json()["next_offset"]
    assert seen == rows >= len(HOSTILE)


POISON = [_house_text(Population="1" + "0" * 30), _house_text(MedInc='"\\ud800"'), _nested(300)]


def test_hostile_requests_do_not_hurt_the_clients_served_alongside(
    service: Service, pick: Callable[[], dict[str, float]]
) -> None:
    """Valid requests share a batch (and a commit) with whatever arrives with them."""

    def valid(_: int) -> Request:
        return "/predict", pick()

    statuses: list[int] = []
    with Hammer(service.url, valid, threads=4) as hammer, service.client() as client:
        hammer.wait_for(acknowledged=20)
        for _ in range(30):
            for body in POISON:
                statuses.append(client.post("/predict", content=body, headers=JSON).status_code)
        hammer.wait_for(acknowledged=hammer.count_acknowledged() + 20)
    assert set(statuses) == {422}, statuses
    assert {o.status for o in hammer.outcomes} == {200}


def _csv(rows: list[dict[str, float]], delimiter: str = ",") -> str:
    lines = [delimiter.join(COLUMNS)] + [delimiter.join(str(r[c]) for c in COLUMNS) for r in rows]
    return "\n".join(lines) + "\n"


def _house(**changes: float) -> dict[str, float]:
    return {**typical_row(), "MedHouseVal": 2.5, **changes}


VALID_CSV = _csv([_house(MedInc=3.0 + i / 100) for i in range(3)])
WIDE = 100_000
CSV = {"content-type": "text/csv"}
HOSTILE_CSV: dict[str, tuple[bytes, dict[str, str], str]] = {
    # name: (body, headers, a phrase the answer must contain)
    "binary-garbage": (b"\x89PNG\r\n\x1a\n\x00\x00" + bytes(range(256)) * 4, CSV, "not UTF-8"),
    "nul-in-a-cell": (VALID_CSV.replace("3.01", "3.0\x001").encode(), CSV, "not a number"),
    "nul-only": (b"\x00" * 4096, CSV, "missing"),
    "huge-field": (VALID_CSV.replace("3.01", "3" * 200_000).encode(), CSV, "field limit"),
    "semicolons": (_csv([_house()], ";").encode(), CSV, "column MedInc: missing"),
    "tabs": (_csv([_house()], "\t").encode(), CSV, "column MedInc: missing"),
    "utf-16-with-bom": (VALID_CSV.encode("utf-16"), CSV, "not UTF-8"),
    "two-boms": (("\ufeff" + VALID_CSV).encode("utf-8-sig"), CSV, "\ufeffMedInc"),
    f"{WIDE}-columns": (
        (",".join(f"c{i}" for i in range(WIDE)) + "\n" + "1," * (WIDE - 1) + "1\n").encode(),
        CSV,
        f"{WIDE} columns",
    ),
    "ragged-rows": ((VALID_CSV + "1,2\n").encode(), CSV, "fields, the header has 9"),
    "only-a-header": (",".join(COLUMNS).encode(), CSV, "no rows"),
    "json-body": (b'{"MedInc": 3}', JSON, "text/csv"),
    "multipart-without-file": (
        b'--b\r\nContent-Disposition: form-data; name="x"\r\n\r\n1\r\n--b--\r\n',
        {"content-type": "multipart/form-data; boundary=b"},
        "`file` field",
    ),
    "multipart-no-boundary": (
        b"--b\r\ngarbage",
        {"content-type": "multipart/form-data"},
        "boundary",
    ),
}
"""Each must get a 4xx saying what is wrong, and leave the batch store as it was. (Uploads are
not prediction-log rows: the store is all-or-nothing, and a refusal is the answer itself.)"""


@pytest.mark.parametrize("name", list(HOSTILE_CSV))
def test_hostile_csv_upload_gets_a_clear_4xx_and_stores_nothing(
    service: Service, service_data: Path, name: str
) -> None:
    body, headers, phrase = HOSTILE_CSV[name]
    before = batches.read_index(service_data)
    with service.client() as client:
        response = client.post(
            "/data/upload", content=body, headers={**headers, "X-API-Key": API_KEY}
        )
    assert 400 <= response.status_code < 500, response.text[:500]
    assert "Traceback" not in response.text
    answer = response.json()
    assert answer["detail"], answer
    assert phrase in json.dumps(answer, ensure_ascii=False), str(answer)[:1000]
    if response.status_code == 422 and "summary" in answer:
        assert "nothing stored" in answer["summary"] and answer["error_count"] >= 1
    assert batches.read_index(service_data) == before


def test_a_csv_with_a_byte_order_mark_is_stored_as_its_columns(
    service: Service, service_data: Path
) -> None:
    """Spreadsheets write UTF-8 with a BOM: it is not part of the first column's name."""
    with service.client() as client:
        response = client.post(
            "/data/upload",
            content=VALID_CSV.encode("utf-8-sig"),
            headers={**CSV, "X-API-Key": API_KEY},
        )
    assert response.status_code in (200, 201), response.text[:1000]
    assert response.json()["rows"] == 3
    assert response.json()["id"] in {batch.id for batch in batches.read_index(service_data)}


def test_schemathesis_finds_no_server_error_in_over_a_thousand_cases(
    service: Service, tmp_path: Path
) -> None:
    report = tmp_path / "schemathesis.json"
    command = [
        str(BIN / "st"),
        "run",
        f"{service.url}/openapi.json",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        "70",
        "--seed",
        "20261122",
        "--generation-database",
        "none",
        # One worker: hypothesis' lambda descriptions race in CPython 3.11's ast under threads.
        "--workers",
        "1",
        # No admin key: a generated POST /admin/retrain would start real training jobs on the
        # shared registry. Admin operations are fuzzed up to their key check here; with the key
        # (all but the retrain starters) in tests/api/test_schemathesis.py, and the upload's
        # parser by the hostile CSVs above.
        "--request-timeout",
        "30",
        "--report",
        "json",
        "--report-json-path",
        str(report),
        "--no-color",
    ]
    completed = subprocess.run(  # noqa: S603 (our venv's schemathesis, fixed arguments)
        command, capture_output=True, text=True, timeout=600, check=False
    )
    output = completed.stdout[-6000:] + completed.stderr[-2000:]
    summary = json.loads(report.read_text(encoding="utf-8"))
    assert summary["operations"]["tested"] == summary["operations"]["total"] >= 15, output
    assert summary["test_cases"]["generated"] >= MIN_CASES, output
    assert summary["failures"] == [] and summary["errors"] == [], output
    assert completed.returncode == 0, output
    with httpx.Client(base_url=service.url) as client:
        assert client.get("/ready").status_code == 200
