"""setup.ps1 and deploy.ps1 cannot run here (no PowerShell): parse them with tree-sitter.

The Windows CI job is where they really run; this catches syntax errors on every machine.
"""

from __future__ import annotations

import pytest
import tree_sitter
import tree_sitter_powershell

from delivery_tools import ROOT

SCRIPTS = ("setup.ps1", "deploy.ps1")


def syntax_errors(source: bytes) -> list[str]:
    """Every ERROR or MISSING node of the parse tree, as `line:column: snippet`."""
    parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))
    found: list[str] = []
    stack = [parser.parse(source).root_node]
    while stack:
        node = stack.pop()
        if node.type == "ERROR" or node.is_missing:
            line, column = node.start_point
            snippet = (node.text or b"").decode(errors="replace")[:60]
            found.append(f"{line + 1}:{column + 1}: {node.type} {snippet!r}")
        stack.extend(node.children)
    return found


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_parses_without_errors(script: str) -> None:
    assert syntax_errors((ROOT / script).read_bytes()) == []


BREAKAGES = {
    "unclosed brace": ("if (-not $ready) {", "if (-not $ready) "),
    "unterminated string": ('"stopping the stack"', '"stopping the stack'),
    "missing parenthesis": (
        "while ((Get-Date) -lt $deadline) {",
        "while ((Get-Date) -lt $deadline {",
    ),
    "trailing comma in param()": ("[int]$ApiPort = 8000\n)", "[int]$ApiPort = 8000,\n)"),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_a_broken_script_is_detected(breakage: str) -> None:
    good, bad = BREAKAGES[breakage]
    source = (ROOT / "deploy.ps1").read_text()
    assert good in source, "the breakage must change the script"
    assert syntax_errors(source.replace(good, bad, 1).encode()) != []


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_stops_on_the_first_error(script: str) -> None:
    text = (ROOT / script).read_text()
    assert "$ErrorActionPreference = 'Stop'" in text
    assert "$LASTEXITCODE -ne 0" in text, "native commands' exit codes are checked too"


def test_setup_takes_the_python_path_and_the_data_source() -> None:
    text = (ROOT / "setup.ps1").read_text()
    for parameter in ("[string]$Python", "[string]$DataSource"):
        assert parameter in text
    for step in ("-m venv", "-r $requirements", "$housing data", "$housing train"):
        assert step in text, step


def test_deploy_builds_waits_smoke_tests_and_can_stop() -> None:
    text = (ROOT / "deploy.ps1").read_text()
    for piece in ('"up", "-d"', "--build", "/ready", "housing smoke", "[switch]$Down", '"down"'):
        assert piece in text, piece
