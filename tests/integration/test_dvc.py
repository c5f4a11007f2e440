"""The DVC pipeline: dvc.yaml agrees with the code (commands, params, the modules each stage
imports), and `make repro` really runs data -> train offline, then reruns only what changed."""

from __future__ import annotations

import ast
import inspect
import json
import os
import shutil
import subprocess  # nosec B404 - runs the venv's own dvc, git and make on fixed arguments
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer.main
import yaml

from housing.cli import app
from processes import BIN, without_venv

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"


@pytest.fixture(scope="module")
def pipeline() -> dict:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def test_stages_run_existing_commands(pipeline: dict) -> None:
    commands = typer.main.get_command(app).commands
    assert list(pipeline) == ["data", "train"]
    for name, stage in pipeline.items():
        words = stage["cmd"].split("housing ", 1)[1].split()
        assert words[0] in commands, (name, stage["cmd"])


def test_deps_exist_and_outs_chain(pipeline: dict) -> None:
    outs = {out for stage in pipeline.values() for out in stage.get("outs", [])}
    assert "data/processed" in pipeline["train"]["deps"]
    for name, stage in pipeline.items():
        for dep in stage["deps"]:
            assert dep in outs or (ROOT / dep).is_file(), f"stage {name}: missing dep {dep}"


def imported_names(tree: ast.AST) -> Iterator[str]:
    """Every absolute import in ``tree``, function-level (lazy) ones included; for
    ``from a import b`` both ``a`` and ``a.b`` (``b`` may be a module)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def module_file(name: str) -> Path | None:
    """The source file of a ``housing`` module, None for anything else (or a plain name)."""
    if name.split(".")[0] != "housing":
        return None
    base = SRC.joinpath(*name.split("."))
    return next((f for f in (base.with_suffix(".py"), base / "__init__.py") if f.is_file()), None)


def stage_modules(command: str) -> set[str]:
    """The housing modules `housing <command>` can execute: cli.py's module-level imports and the
    command's own, then everything those modules import, transitively."""
    cli = SRC / "housing" / "cli.py"
    top = [
        n for n in ast.parse(cli.read_text()).body if isinstance(n, (ast.Import, ast.ImportFrom))
    ]
    callback = typer.main.get_command(app).commands[command].callback
    todo = [*imported_names(ast.Module(body=top, type_ignores=[]))]
    todo += imported_names(ast.parse(textwrap.dedent(inspect.getsource(callback))))
    files = {cli, SRC / "housing" / "__init__.py"}
    while todo:
        found = module_file(todo.pop())
        if found and found not in files:
            files.add(found)
            todo.extend(imported_names(ast.parse(found.read_text())))
    return {f.relative_to(ROOT).as_posix() for f in files}


def test_code_deps_are_exactly_the_modules_each_stage_imports(pipeline: dict) -> None:
    """Editing a module a stage runs must rerun it; a module it does not run must not."""
    for name, stage in pipeline.items():
        code = [dep for dep in stage["deps"] if dep.startswith("src/")]
        assert len(code) == len(set(code)), f"stage {name}: duplicate deps"
        command = stage["cmd"].split("housing ", 1)[1].split()[0]
        assert set(code) == stage_modules(command), f"stage {name}"


def test_params_exist(pipeline: dict) -> None:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for name, stage in pipeline.items():
        for key in stage["params"]:
            node = params
            for part in key.split("."):
                assert isinstance(node, dict) and part in node, f"stage {name}: no param {key}"
                node = node[part]


def test_repo_config_keeps_dvc_offline() -> None:
    config = (ROOT / ".dvc" / "config").read_text()
    assert "analytics = false" in config and "check_update = false" in config


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run(  # nosec B603 - fixed argv, no shell
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return result


@pytest.mark.integration
@pytest.mark.slow
def test_make_repro_runs_the_pipeline_offline_and_reruns_only_what_changed(
    tmp_path: Path, quick_train_params: dict
) -> None:
    """A fresh git + DVC repo with this dvc.yaml and cheap training params: `make repro` without
    an activated venv runs data -> train, a second repro runs nothing, the metrics show the
    champion, outputs come back from the local cache, and each change reruns its own stage."""
    assert os.environ.get("SCIKIT_LEARN_DATA"), "set SCIKIT_LEARN_DATA (the offline dataset)"
    repo = tmp_path / "repo"
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    deps = {dep for stage in stages.values() for dep in stage["deps"] if (ROOT / dep).is_file()}
    for relative in sorted({"dvc.yaml", ".dvcignore", ".dvc/config", *deps}):
        (repo / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / relative, repo / relative)
    # The real data section; training cut to one candidate with no search (the pipeline wiring is
    # under test here; test_train_e2e.py covers the three candidates).
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"] = quick_train_params | {
        "importance_rows": 50,
        "latency_repeats": 1,
        "candidates": {"linear": quick_train_params["candidates"]["linear"]},
    }
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    # No inherited HOUSING_/MLFLOW_ settings, nor an outer make's flags (make test runs this).
    dropped = ("HOUSING_", "MLFLOW_", "MAKEFLAGS", "MAKELEVEL", "MFLAGS")
    keep = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    bare = keep | {
        "PATH": without_venv(keep.get("PATH", "")),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",  # artifacts beside it
        "DVC_NO_ANALYTICS": "1",
        "DVC_SITE_CACHE_DIR": str(tmp_path / "site-cache"),
        "DVC_GLOBAL_CONFIG_DIR": str(tmp_path / "global-config"),
    }
    assert shutil.which("housing", path=bare["PATH"]) is None, "housing is on PATH outside the venv"
    env = bare | {"PATH": f"{BIN}{os.pathsep}{bare['PATH']}"}  # as with the venv activated
    dvc = str(BIN / "dvc")
    git, make = shutil.which("git"), shutil.which("make")
    assert git and make, "git and make are needed for the DVC test"
    run([git, "init", "-q"], repo, env)
    run([dvc, "init", "-q", "--force"], repo, env)  # --force: keeps the copied .dvc/config

    # `make repro` as documented, from a shell without the venv on PATH. -o: the install stamp
    # counts as done (the venv running this test is installed; no pip into it from here).
    venv = BIN.parent
    makefile = ["-f", str(ROOT / "Makefile"), "-C", str(repo), f"VENV={venv}"]
    first = run([make, *makefile, "-o", f"{venv}/.installed-runtime", "repro"], repo, bare)
    assert "Running stage 'data'" in first.stdout and "Running stage 'train'" in first.stdout
    processed = repo / "data" / "processed"
    assert sorted(p.name for p in processed.iterdir()) == [
        "manifest.json",
        "reference.csv",
        "test.csv",
        "train.csv",
        "validation.csv",
    ]
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    assert lock["data"]["params"]["params.yaml"]["data"]["seed"] == 42
    assert lock["train"]["params"]["params.yaml"]["train"] == params["train"]
    assert any(out["path"] == "data/processed" for out in lock["data"]["outs"])
    assert {dep["path"] for dep in lock["train"]["deps"]} == set(stages["train"]["deps"])

    report = json.loads((repo / "reports" / "train.json").read_text())
    metrics = json.loads(run([dvc, "metrics", "show", "--json"], repo, env).stdout)
    shown = metrics[""]["data"]["reports/train.json"]["data"]
    assert shown == {k: v for k, v in report.items() if k != "candidates"}  # DVC skips lists
    assert report["promoted"] is True and report["registered"] == {"version": 1, "model": "linear"}
    assert report["champion"]["version"] == 1 and report["champion"]["model"] == "linear"
    assert 0.3 < report["champion"]["rmse"] < 0.75

    again = run([dvc, "repro"], repo, env)
    assert "Running stage" not in again.stdout
    assert "Stage 'data' didn't change" in again.stdout
    assert "Stage 'train' didn't change" in again.stdout

    before = {p.name: p.read_bytes() for p in processed.iterdir()}
    shutil.rmtree(processed)
    run([dvc, "checkout", "data/processed"], repo, env)  # from .dvc/cache, no remote
    assert {p.name: p.read_bytes() for p in processed.iterdir()} == before

    # Code: a module only training imports invalidates train; one both import, both stages.
    edited = {name: repo / "src" / "housing" / name for name in ("evaluation.py", "fileio.py")}
    sources = {name: path.read_text() for name, path in edited.items()}
    for path in edited.values():
        path.write_text(path.read_text() + "# edited\n")
    status = json.loads(run([dvc, "status", "--json"], repo, env).stdout)
    assert status == {
        "data": [{"changed deps": {"src/housing/fileio.py": "modified"}}],
        "train": [
            {
                "changed deps": {
                    "src/housing/evaluation.py": "modified",
                    "src/housing/fileio.py": "modified",
                }
            }
        ],
    }
    for name, path in edited.items():
        path.write_text(sources[name])

    # A train parameter: train reruns (a new registered version), data does not.
    params["train"]["latency_repeats"] = 2
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    status = json.loads(run([dvc, "status", "--json"], repo, env).stdout)
    assert status == {"train": [{"changed deps": {"params.yaml": {"train": "modified"}}}]}
    retrain = run([dvc, "repro"], repo, env)
    assert "Running stage 'train'" in retrain.stdout
    assert "Running stage 'data'" not in retrain.stdout
    assert "Stage 'data' didn't change" in retrain.stdout
    report = json.loads((repo / "reports" / "train.json").read_text())
    assert report["registered"]["version"] == 2
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    assert lock["train"]["params"]["params.yaml"]["train"]["latency_repeats"] == 2
    assert run([dvc, "status", "--json"], repo, env).stdout.strip() == "{}"

    # A data parameter: data reruns with a new split, which invalidates train downstream.
    params["data"]["seed"] = 7
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    status = json.loads(run([dvc, "status", "--json"], repo, env).stdout)
    assert status == {"data": [{"changed deps": {"params.yaml": {"data": "modified"}}}]}
    run([dvc, "repro", "data"], repo, env)
    assert (processed / "train.csv").read_bytes() != before["train.csv"]
    status = json.loads(run([dvc, "status", "train", "--json"], repo, env).stdout)
    assert status == {"train": [{"changed deps": {"data/processed": "modified"}}]}
