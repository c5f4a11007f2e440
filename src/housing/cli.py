"""The `housing` command line: thin Typer shells over the package's stages.

Each command imports its stage lazily, so `housing --help` stays fast and a command needs only
its own dependencies. Errors a user can fix exit non-zero with one clear line, never a traceback.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="housing",
    help="California house values: data, training, registry, serving, monitoring, UI.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def fail(message: str, code: int = 1) -> None:
    """Print a one-line error to stderr and exit with ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@app.callback()
def main() -> None:
    """California house values: data, training, registry, serving, monitoring, UI."""


if __name__ == "__main__":  # pragma: no cover
    app()
