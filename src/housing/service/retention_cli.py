"""`housing log archive|purge|stats|export`: thin commands over ``retention``.

They act on the log at HOUSING_DATABASE_URL with the HOUSING_LOG_* retention settings, the
same as the API's background purge; a purge refuses (exit 3) while another process holds the
purge lease.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

log_app = typer.Typer(
    name="log",
    help="The prediction log: archive old days to Parquet, purge, size, export.",
    no_args_is_help=True,
)


def _fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _engine():
    from sqlalchemy.exc import SQLAlchemyError

    from housing.service import log as prediction_log
    from housing.service.settings import get_service_settings

    url = get_service_settings().database_url
    engine = prediction_log.create_log_engine(url)
    try:
        prediction_log.migrate(engine)
    except SQLAlchemyError as exc:
        _fail(f"cannot open the prediction log at {url}: {str(exc).splitlines()[0]}")
    return engine


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


@log_app.command()
def archive() -> None:
    """Write every day older than HOUSING_LOG_RETENTION_DAYS to Parquet (each day once)."""
    from housing.service import retention

    engine = _engine()
    days = retention.archive(engine, retention.RetentionSettings(), datetime.now(UTC))
    for day in days:
        typer.echo(f"{day.day}: {day.rows} rows, {day.bytes} bytes, sha256 {day.sha256}")
    typer.echo(f"{len(days)} day(s) archived")


@log_app.command()
def purge(
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON line.")] = False,
) -> None:
    """Archive, then delete rows past retention in small batches, then shrink the file."""
    from housing.service import retention

    engine = _engine()
    try:
        result = retention.purge(engine, retention.RetentionSettings())
    except retention.PurgeClaimedError as exc:
        _fail(str(exc), 3)
    if json_output:
        typer.echo(json.dumps(result.as_dict(), sort_keys=True))
    else:
        typer.echo(
            f"{len(result.archived)} day(s) archived, {result.deleted} rows deleted, "
            f"{result.vacuumed_pages} pages freed in {result.seconds:.1f} s"
        )


@log_app.command()
def stats(
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON line.")] = False,
) -> None:
    """Rows, bytes and oldest row of the log; the latest purge; what is archived."""
    from housing.service import retention

    figures = retention.stats(_engine()).as_dict()
    if json_output:
        typer.echo(json.dumps(figures, sort_keys=True))
        return
    for name, value in figures.items():
        typer.echo(f"{name:<16} {value}")


@log_app.command()
def export(
    out: Annotated[Path, typer.Option(help="Output file: Parquet, or CSV if it ends in .csv.")],
    since: Annotated[datetime | None, typer.Option(help="From this time (UTC, inclusive).")] = None,
    until: Annotated[datetime | None, typer.Option(help="Before this time (UTC).")] = None,
) -> None:
    """Rows created in [--since, --until) from the archive and the log, each once, oldest first."""
    from housing.service import retention

    since, until = _utc(since), _utc(until)
    if since is not None and until is not None and since >= until:
        _fail("--since must be before --until")
    settings = retention.RetentionSettings()
    rows = retention.export(_engine(), settings.archive_dir, out, since, until)
    typer.echo(f"{rows} rows written to {out}")
