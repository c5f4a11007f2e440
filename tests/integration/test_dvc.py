"""The DVC pipeline: dvc.yaml agrees with the code, and `dvc repro data` really runs offline."""

from __future__ import annotations

import json
import os
import shutil
import subprocess  # nosec B404 - runs the venv's own dvc and git on fixed arguments
import sys
from pathlib import Path

import pytest
import typer.main
import yaml

from housing.cli import app

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


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
def test_dvc_repro_data_offline_with_local_cache(tmp_path: Path) -> None:
    """A fresh git + DVC repo with this dvc.yaml: repro, skip when unchanged, restore from cache."""
    assert os.environ.get("SCIKIT_LEARN_DATA"), "set SCIKIT_LEARN_DATA (the offline dataset)"
    repo = tmp_path / "repo"
    for relative in ["dvc.yaml", "params.yaml", ".dvcignore", ".dvc/config"]:
        (repo / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / relative, repo / relative)
    for dep in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["data"]["deps"]:
        (repo / dep).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / dep, repo / dep)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOUSING_")}
    env |= {
        "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        "DVC_NO_ANALYTICS": "1",
        "DVC_SITE_CACHE_DIR": str(tmp_path / "site-cache"),
        "DVC_GLOBAL_CONFIG_DIR": str(tmp_path / "global-config"),
    }
    dvc = str(BIN / "dvc")
    git = shutil.which("git")
    assert git, "git is needed for the DVC test"
    run([git, "init", "-q"], repo, env)
    run([dvc, "init", "-q", "--force"], repo, env)  # --force: keeps the copied .dvc/config

    first = run([dvc, "repro", "data"], repo, env)
    assert "Running stage 'data'" in first.stdout
    processed = repo / "data" / "processed"
    assert sorted(p.name for p in processed.iterdir()) == [
        "manifest.json",
        "reference.csv",
        "test.csv",
        "train.csv",
    ]
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]["data"]
    assert lock["params"]["params.yaml"]["data"]["seed"] == 42
    assert any(out["path"] == "data/processed" for out in lock["outs"])
    before = {p.name: p.read_bytes() for p in processed.iterdir()}

    again = run([dvc, "repro", "data"], repo, env)
    assert "Running stage 'data'" not in again.stdout
    assert "didn't change" in again.stdout

    shutil.rmtree(processed)
    run([dvc, "checkout", "data/processed"], repo, env)  # from .dvc/cache, no remote
    assert {p.name: p.read_bytes() for p in processed.iterdir()} == before

    params = (repo / "params.yaml").read_text().replace("seed: 42", "seed: 7")
    (repo / "params.yaml").write_text(params)
    status = json.loads(run([dvc, "status", "data", "--json"], repo, env).stdout)
    assert status == {"data": [{"changed deps": {"params.yaml": {"data": "modified"}}}]}
    run([dvc, "repro", "data"], repo, env)
    assert (processed / "train.csv").read_bytes() != before["train.csv"]
