"""The Dockerfile, its entrypoint, healthcheck and .dockerignore, read as files (the image is built
and run in a real engine by tests/delivery/test_compose_up.py, `make test-docker`)."""

from __future__ import annotations

import fnmatch
import http.server
import re
import shutil
import sys
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from delivery_tools import ROOT, run, tool

DOCKERFILE = ROOT / "Dockerfile"
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"
HEALTHCHECK = ROOT / "docker" / "healthcheck.py"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def test_hadolint_passes_on_the_dockerfile() -> None:
    result = run(tool("hadolint"), "--no-color", str(DOCKERFILE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\nRUN cd /app\n")
    result = run(tool("hadolint"), "--no-color", str(bad))
    assert result.returncode != 0
    for rule in ("DL3007", "DL3008", "DL3003"):  # latest tag, unpinned apt, cd in RUN
        assert rule in result.stdout


def test_multi_stage_slim_python_311_non_root_with_healthcheck() -> None:
    steps = instructions()
    bases = [args for keyword, args in steps if keyword == "FROM"]
    assert len(bases) >= 2, "multi-stage: a builder and a runtime stage"
    # Every stage on BASE_IMAGE (a mirrored or offline copy), python:3.11-slim by default.
    assert steps[0] == ("ARG", "BASE_IMAGE=python:3.11-slim"), steps[0]
    assert all(base.startswith("${BASE_IMAGE} AS ") for base in bases), bases
    final = steps[max(i for i, (k, _) in enumerate(steps) if k == "FROM") :]
    users = [args for keyword, args in final if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "runtime runs as non-root"
    assert any(k == "HEALTHCHECK" for k, _ in final)
    assert any(k == "COPY" and "--from=builder" in a for k, a in final)
    entrypoint = [a for k, a in final if k == "ENTRYPOINT"]
    assert entrypoint and "housing-entrypoint" in entrypoint[-1]
    assert any(k == "COPY" and a.startswith("docker/entrypoint.sh") for k, a in final)


def test_no_syntax_directive_so_no_builder_fetches_a_frontend_image() -> None:
    """BuildKit pulls the image a `# syntax=` line names (offline, the build fails); the classic
    builder ignores it. Without one, both builders read the file as it is."""
    first = DOCKERFILE.read_text().splitlines()[0]
    assert not re.match(r"#\s*syntax\s*=", first, re.IGNORECASE), first


def test_the_image_installs_exactly_pinned_requirements() -> None:
    steps = instructions()
    assert any(k == "RUN" and "-r requirements.txt" in a for k, a in steps)
    for number, line in enumerate((ROOT / "requirements.txt").read_text().splitlines(), 1):
        requirement = line.split("#")[0].split(";")[0].strip()
        if requirement:
            assert re.fullmatch(
                r"[A-Za-z0-9_.\-\[\],]+==[\w.]+", requirement
            ), f"requirements.txt:{number} is not an exact pin: {line}"


def dockerignore_allows(path: str, patterns: list[str]) -> bool:
    """Whether the build context keeps ``path`` (Docker's rule: the last matching pattern wins).

    Hand-written because no Docker engine or client library is installed here; it covers the
    patterns this repository uses (``*``, ``**/name``, ``!dir/``).
    """
    keep = True
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw.lstrip("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        bare = pattern.removeprefix("**/")
        hit = any(fnmatch.fnmatchcase(p, pattern) for p in prefixes) or (
            pattern.startswith("**/") and any(fnmatch.fnmatchcase(part, bare) for part in parts)
        )
        if hit:
            keep = negate
    return keep


def test_dockerignore_sends_every_copied_path_and_no_local_state() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = [
        source
        for keyword, args in instructions()
        if keyword == "COPY" and "--from=" not in args
        for source in args.split()[:-1]
        if not source.startswith("--")
    ]
    assert copied
    for source in copied:
        assert (ROOT / source).exists(), f"COPY {source}: no such path"
        assert dockerignore_allows(source, patterns), f".dockerignore drops COPY source {source}"
    for local in (
        ".venv/bin/python",
        ".git/HEAD",
        "data/processed/train.csv",
        "mlflow.db",
        "src/housing/__pycache__/cli.cpython-311.pyc",
        "node_modules/x/index.js",
    ):
        assert not dockerignore_allows(local, patterns), f"{local} would be sent to the build"


def test_shellcheck_passes_on_the_entrypoint() -> None:
    result = run(tool("shellcheck"), str(ENTRYPOINT))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.posix  # the image's entrypoint is a POSIX sh script
def test_entrypoint_runs_other_commands_and_exits_with_their_code() -> None:
    ok = run("sh", str(ENTRYPOINT), "sh", "-c", "echo from-inside; exit 3")
    assert ok.returncode == 3 and ok.stdout.strip() == "from-inside"


@pytest.mark.parametrize("role", ["trainer", "api", "ui", "mlflow"])
def test_entrypoint_handles_each_role(role: str) -> None:
    text = ENTRYPOINT.read_text()
    assert re.search(rf"^\s*{role}\)", text, re.MULTILINE), f"no `{role})` branch"


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.send_response(200 if self.path == "/health" else 503)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        """Keep the test output quiet."""


@pytest.fixture
def health_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def healthcheck(url: str) -> int:
    """Exit code of the container's healthcheck script probing ``url``."""
    return run(sys.executable, str(HEALTHCHECK), env={"HOUSING_HEALTHCHECK_URL": url}).returncode


def test_healthcheck_passes_on_200_fails_otherwise(health_server: str) -> None:
    assert healthcheck(f"{health_server}/health") == 0
    assert healthcheck(f"{health_server}/other") == 1
    closed = health_server.rsplit(":", 1)[0] + ":9"  # the discard port: nothing listens
    assert healthcheck(f"{closed}/health") == 1
    assert healthcheck("http://example.org/health") == 2  # never probes off-host


def test_the_wheel_the_image_installs_carries_every_source_file(tmp_path: Path) -> None:
    """The image installs the package non-editable: data files (migrations, templates) must ship.

    Built from a copy of exactly what the Dockerfile copies into its builder stage.
    """
    context = tmp_path / "context"
    for name in ("pyproject.toml", "README.md"):
        (context / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, context / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for folder in ("src", "api", "frontend"):
        shutil.copytree(ROOT / folder, context / folder, ignore=ignore)
    result = run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(context)
    )
    assert result.returncode == 0, result.stderr
    (wheel,) = tmp_path.glob("housing-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    missing = [
        f"{package}/{path.relative_to(context / source).as_posix()}"
        for source, package in (
            ("src/housing", "housing"),
            ("api", "api"),
            ("frontend", "frontend"),
        )
        for path in (context / source).rglob("*")
        if path.is_file()
        and f"{package}/{path.relative_to(context / source).as_posix()}" not in shipped
    ]
    assert not missing, f"not in the wheel (add package data in pyproject.toml): {missing}"
