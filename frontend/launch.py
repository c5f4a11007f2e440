"""Start the Streamlit app the way `streamlit run` does, with settings fit for a server."""

from __future__ import annotations

import os
from pathlib import Path

APP = Path(__file__).resolve().parent / "app.py"


def streamlit_args(host: str, port: int) -> list[str]:
    """`streamlit run` arguments: headless, no usage statistics, no file watcher."""
    return [
        "run",
        str(APP),
        "--server.headless=true",
        f"--server.address={host}",
        f"--server.port={port}",
        "--server.fileWatcherType=none",
        "--server.runOnSave=false",
        "--browser.gatherUsageStats=false",
        "--client.toolbarMode=viewer",
        "--global.developmentMode=false",
    ]


def run(host: str, port: int, api_url: str | None = None) -> None:
    """Serve the UI until interrupted (blocks); ``api_url`` overrides HOUSING_API_URL."""
    # Streamlit's own command-line entry point, called in-process: the same start-up path as
    # `streamlit run` without a child process to keep track of.
    from streamlit.web import cli as streamlit_cli

    if api_url:
        os.environ["HOUSING_API_URL"] = api_url
    streamlit_cli.main.main(args=streamlit_args(host, port), prog_name="streamlit")
