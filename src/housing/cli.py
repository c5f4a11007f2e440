"""The `housing` command line: thin Typer shells over the package's stages.

Each command imports its stage lazily, so `housing --help` stays fast and a command needs only
its own dependencies. Errors a user can fix exit non-zero with one clear line, never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from housing.service.retention_cli import log_app

app = typer.Typer(
    name="housing",
    help="California house values: data, training, registry, serving, monitoring, UI.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(log_app)  # `housing log archive|purge|stats|export`


def fail(message: str, code: int = 1) -> None:
    """Print a one-line error to stderr and exit with ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@app.callback()
def main() -> None:
    """California house values: data, training, registry, serving, monitoring, UI."""


@app.command()
def data(
    source: Annotated[
        Path | None,
        typer.Option(
            help="Raw StatLib .tgz or CSV (header or not), or a CSV in scikit-learn's layout "
            "(8 features + MedHouseVal). Default: scikit-learn's fetch_california_housing."
        ),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON line summarising the outputs.")
    ] = False,
) -> None:
    """Load, validate and split the data into data/processed (train, test, drift reference)."""
    import json

    from housing import data as stage
    from housing.settings import get_settings
    from housing.validation import DataValidationError

    settings = get_settings()
    try:
        params = stage.load_params(settings.params_file)
        manifest = stage.prepare(settings.data_dir, params, source)
    except DataValidationError as exc:
        for line in exc.lines():
            typer.echo(f"error: {line}", err=True)
        raise typer.Exit(2) from None
    except stage.DataSourceError as exc:
        fail(str(exc), 2)
    except (stage.ParamsError, OSError) as exc:
        fail(str(exc))
    out = stage.processed_dir(settings.data_dir)
    rows = manifest["rows"]
    if json_output:
        summary = {"data_dir": str(out), **{k: manifest[k] for k in ("source", "rows", "seed")}}
        summary["sha256"] = {name: f["sha256"] for name, f in manifest["files"].items()}
        typer.echo(json.dumps(summary, sort_keys=True))
    else:
        typer.echo(
            f"wrote {out}: train {rows['train']} rows, validation {rows['validation']}, "
            f"test {rows['test']}, "
            f"reference {rows['reference']} (source: {manifest['source']})"
        )


@app.command()
def ui(
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: all).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8501,
    api_url: Annotated[
        str | None, typer.Option(help="The API's URL (default: $HOUSING_API_URL or :8000).")
    ] = None,
) -> None:
    """Start the Streamlit UI (Predict, History, Drift, Models, Service, Admin) over the API."""
    from frontend import launch

    launch.run(host, port, api_url)


@app.command()
def smoke(
    url: Annotated[
        str, typer.Option(help="Base URL of the running API.")
    ] = "http://127.0.0.1:8000",
    wait: Annotated[
        float, typer.Option(help="Seconds to wait for /health first (a deploy may be starting).")
    ] = 0.0,
    timeout: Annotated[float, typer.Option(help="Seconds allowed per request.")] = 10.0,
) -> None:
    """Check a running API: health, ready, a valid and an invalid prediction, metrics."""
    from housing import smoke as stage

    results = stage.run_smoke(url, timeout=timeout, wait=wait)
    for result in results:
        typer.echo(f"{'ok  ' if result.ok else 'FAIL'} {result.name:<8} {result.detail}")
    if names := stage.failed(results):
        fail(f"smoke test of {url} failed: {', '.join(names)}")
    typer.echo(f"smoke test of {url} passed ({len(results)} checks)")


def _quiet_mlflow() -> None:
    """MLflow and alembic log every migration and run URL; keep the CLI's output readable."""
    import logging

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


@app.command()
def train(
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON line (also written to reports/).")
    ] = False,
    if_no_champion: Annotated[
        bool, typer.Option("--if-no-champion", help="Do nothing if a champion exists already.")
    ] = False,
) -> None:
    """Train the three candidates, log them to MLflow, register the best, gate `champion`."""
    import json

    from housing import train as stage
    from housing.data import DataNotFoundError, ParamsError
    from housing.registry import RegistryError
    from housing.settings import get_settings
    from housing.tracking import TrackingUnavailableError
    from housing.validation import DataValidationError

    _quiet_mlflow()
    settings = get_settings()
    try:
        result = stage.train(
            settings, stage.load_params(settings.params_file), if_no_champion=if_no_champion
        )
    except DataValidationError as exc:
        for line in exc.lines():
            typer.echo(f"error: {line}", err=True)
        raise typer.Exit(2) from None
    except (DataNotFoundError, ParamsError, TrackingUnavailableError, RegistryError) as exc:
        fail(str(exc))
    if not result.skipped:
        stage.write_report(settings.reports_dir / "train.json", result)
    summary = result.summary()
    if json_output:
        typer.echo(json.dumps(summary))
        return
    for c in summary["candidates"]:
        typer.echo(
            f"{c['model']:<18} test RMSE {c['rmse']:.4f}  MAE {c['mae']:.4f}  R2 {c['r2']:.4f}"
            f"  CV RMSE {c['cv_rmse']:.4f}  fit {c['fit_seconds']:.1f} s"
        )
    if result.registered:
        typer.echo(
            f"registered {settings.model_name} v{result.registered['version']} "
            f"({result.registered['model']}): {result.reason}"
        )
    champ = summary["champion"]
    typer.echo(
        f"champion: v{champ['version']} {champ['model']} (test RMSE {champ['rmse']:.4f}, "
        f"R2 {champ['r2']:.4f}){' - already there, not trained' if result.skipped else ''}"
    )
    typer.echo(f"done in {summary['seconds']:.1f} s")


@app.command("benchmark-models", context_settings={"allow_extra_args": True})
def benchmark_models(
    ctx: typer.Context,
    seeds: Annotated[
        list[int] | None,
        typer.Option(help="Split seeds, one random 70/10/20 split each: --seeds 0 1 2 3 42."),
    ] = None,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Where to write the JSON result.")
    ] = None,
    spatial_folds: Annotated[
        int, typer.Option(min=0, help="Folds of the spatial hold-out (0: skip it).")
    ] = 5,
    spatial_clusters: Annotated[
        int, typer.Option(min=2, help="k-means clusters of the coordinates.")
    ] = 50,
    rows: Annotated[
        int | None, typer.Option(min=50, help="Benchmark on this many sampled rows only.")
    ] = None,
    source: Annotated[
        Path | None, typer.Option(help="Data file as for `housing data` (default: scikit-learn's).")
    ] = None,
) -> None:
    """Every candidate on several split seeds and a spatial hold-out: mean ± sd test metrics."""
    from housing import benchmark_models as bench
    from housing.data import DataSourceError, ParamsError, load_source
    from housing.fileio import atomic_write_json
    from housing.settings import get_settings
    from housing.train import load_params
    from housing.validation import DataValidationError

    settings = get_settings()
    try:
        protocol = bench.Protocol(
            seeds=bench.check_seeds(bench.seeds_given(seeds, ctx.args)),
            spatial_folds=spatial_folds,
            spatial_clusters=spatial_clusters,
        )
        params = load_params(settings.params_file)
        frame = bench.sample_rows(load_source(source).frame, rows, protocol.spatial_seed)
    except DataValidationError as exc:
        for line in exc.lines():
            typer.echo(f"error: {line}", err=True)
        raise typer.Exit(2) from None
    except DataSourceError as exc:
        fail(str(exc), 2)
    except (ParamsError, ValueError, OSError) as exc:
        fail(str(exc))
    summary = bench.benchmark(frame, params, protocol).summary()
    out = json_path or settings.reports_dir / "benchmark_models.json"
    atomic_write_json(out, summary)
    for line in bench.table(summary):
        typer.echo(line)
    typer.echo(f"wrote {out} ({summary['rows']} rows, {summary['seconds']:.0f} s)")


def _registry_client():
    """Settings and a client for the registry commands, after a fail-fast reachability check."""
    from mlflow import MlflowClient

    from housing.settings import get_settings
    from housing.tracking import TrackingUnavailableError, check_tracking

    _quiet_mlflow()
    settings = get_settings()
    try:
        check_tracking(settings.mlflow_tracking_uri)
    except TrackingUnavailableError as exc:
        fail(str(exc))
    uri = settings.mlflow_tracking_uri
    return settings, MlflowClient(tracking_uri=uri, registry_uri=uri)


@app.command()
def promote(
    version: Annotated[int, typer.Option("--version", min=1, help="Model version to serve.")],
) -> None:
    """Make a registered version the `champion` (the replaced one becomes `previous`)."""
    from housing import registry

    settings, client = _registry_client()
    try:
        target, replaced = registry.promote(client, settings.model_name, version)
    except registry.RegistryError as exc:
        fail(str(exc))
    was = f" (was v{replaced}, now `previous`)" if replaced else " (already champion)"
    typer.echo(f"champion: {settings.model_name} v{target.version}{was}")


@app.command()
def rollback() -> None:
    """Swap `champion` and `previous`: serve the model the last promotion replaced."""
    from housing import registry

    settings, client = _registry_client()
    try:
        restored, demoted = registry.rollback(client, settings.model_name)
    except registry.RegistryError as exc:
        fail(str(exc))
    typer.echo(
        f"champion: {settings.model_name} v{restored.version} "
        f"(v{demoted.version} is now `previous`)"
    )


def _service_settings():
    """The service's settings, or one clear line naming the bad variable."""
    from pydantic import ValidationError

    from housing.service.settings import get_service_settings

    try:
        return get_service_settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"HOUSING_{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        )
        fail(f"invalid service settings: {problems}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: all).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="uvicorn worker processes.")] = 1,
) -> None:
    """Start the prediction API (uvicorn + uvloop; settings from HOUSING_* variables)."""
    from sqlalchemy.exc import SQLAlchemyError

    from housing.service import server

    settings = _service_settings()
    try:
        server.run(settings, host, port, workers)
    except (SQLAlchemyError, OSError) as exc:
        from sqlalchemy.engine import make_url

        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        where = make_url(settings.database_url).render_as_string(hide_password=True)
        fail(f"cannot open the prediction log {where}: {reason}")


@app.command()
def bench(
    json_output: Annotated[bool, typer.Option("--json", help="End with one JSON line.")] = False,
    duration: Annotated[int, typer.Option(min=1, help="Seconds of load per server.")] = 10,
    connections: Annotated[int, typer.Option(min=1, help="wrk connections.")] = 16,
    threads: Annotated[int, typer.Option(min=1, help="wrk threads.")] = 2,
    rate_limit: Annotated[
        str, typer.Option(help="HOUSING_RATE_LIMIT for the service under test ('' = off).")
    ] = "",
    mlflow: Annotated[bool, typer.Option(help="Also measure `mlflow models serve`.")] = True,
) -> None:
    """Load-test the service vs a bare FastAPI ceiling and `mlflow models serve` (wrk)."""
    import json
    import logging

    from housing.service import bench as stage

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    _quiet_mlflow()
    config = stage.BenchConfig(duration, connections, threads, rate_limit=rate_limit, mlflow=mlflow)
    try:
        results = stage.run(_service_settings(), config)
    except stage.BenchError as exc:
        fail(str(exc))
    line = stage.headline(results)
    for target, met in stage.verdict(line).items():
        typer.echo(f"{'met ' if met else 'MISS'} {target}", err=True)
    if json_output:
        typer.echo(json.dumps(line))
    else:
        typer.echo(
            f"service {line['rps']} req/s (p50 {line['p50_ms']} ms, p99 {line['p99_ms']} ms, "
            f"{line['errors']} errors, {line['logged_rows']}/{line['sent']} logged); "
            f"ceiling {line['ceiling_rps']} req/s; mlflow {line['mlflow_rps']} req/s"
        )


# --- monitoring ------------------------------------------------------------------------------


def _api_client(url: str, timeout: float):
    """An HTTP client for a running API (http/https URLs only)."""
    import httpx

    if not url.startswith(("http://", "https://")):
        fail(f"--url must start with http:// or https://, got {url!r}")
    return httpx.Client(base_url=url.rstrip("/"), timeout=timeout)


@app.command()
def drift(
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON line: share, detected, features.")
    ] = False,
    window: Annotated[
        int | None, typer.Option(min=1, help="Newest inputs to compare (default: settings).")
    ] = None,
    min_rows: Annotated[
        int | None, typer.Option(min=1, help="Refuse with fewer inputs (default: settings).")
    ] = None,
    html: Annotated[
        Path | None, typer.Option(help="Also write Evidently's HTML report to this file.")
    ] = None,
) -> None:
    """Compare the newest logged inputs (HOUSING_DATABASE_URL) with the training reference."""
    import json

    from housing.data import DataNotFoundError, load_reference
    from housing.fileio import atomic_write_text
    from housing.monitoring.drift import detect_drift
    from housing.monitoring.settings import get_monitoring_settings
    from housing.service import log as prediction_log
    from housing.service.settings import get_service_settings
    from housing.validation import DataValidationError
    from sqlalchemy.exc import SQLAlchemyError

    settings = get_monitoring_settings()
    url = get_service_settings().database_url
    window = window or settings.drift_window_rows
    min_rows = min_rows or settings.drift_min_rows
    try:
        reference = load_reference(settings.data_dir)
        engine = prediction_log.create_log_engine(url)
        current = prediction_log.recent_inputs(engine, window)
    except (DataNotFoundError, DataValidationError) as exc:
        fail(str(exc))
    except SQLAlchemyError as exc:
        fail(f"cannot read the prediction log at {url}: {str(exc).splitlines()[0]}")
    if len(current) < min_rows:
        fail(f"only {len(current)} inputs logged at {url}; drift needs {min_rows} (--min-rows)")
    result = detect_drift(reference, current, settings.drift_config(), with_html=html is not None)
    if html is not None and result.html is not None:
        atomic_write_text(html, result.html)
    if json_output:
        typer.echo(json.dumps(result.as_dict(), sort_keys=True))
        return
    verdict = "DRIFT" if result.detected else "no drift"
    typer.echo(
        f"{verdict}: {result.share:.0%} of features drifted (threshold {result.drift_share:.0%}), "
        f"{result.current_rows} inputs vs {result.reference_rows} reference rows"
    )
    for f in result.features:
        typer.echo(
            f"  {f.feature:<11} {f.method} {f.score:10.3g}  {'drifted' if f.drifted else ''}"
        )


@app.command("drift-calibrate")
def drift_calibrate(
    trials: Annotated[int, typer.Option(min=1, help="Windows drawn per shift and size.")] = 50,
    rows: Annotated[list[int], typer.Option(min=10, help="Window size(s) to test.")] = [500, 1000],
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    json_output: Annotated[bool, typer.Option("--json", help="One JSON line per cell.")] = False,
) -> None:
    """Benchmark the drift rule: false alarms on held-out rows, detection under each shift."""
    import json

    from housing.data import DataNotFoundError, load_reference, load_split
    from housing.monitoring.calibrate import calibrate
    from housing.monitoring.settings import get_monitoring_settings

    settings = get_monitoring_settings()
    try:
        reference = load_reference(settings.data_dir)
        held_out = load_split(settings.data_dir)[1]
    except DataNotFoundError as exc:
        fail(str(exc))
    for cell in calibrate(reference, held_out, rows, trials, settings.drift_config(), seed):
        if json_output:
            typer.echo(json.dumps(cell.as_dict(), sort_keys=True))
        else:
            typer.echo(
                f"{cell.shift:<8} {cell.rows:>5} rows: drift flagged in {cell.detected_rate:6.1%}"
                f" of {cell.trials}; smallest p-value {cell.min_score_lowest:.2g}"
                f"..{cell.min_score_highest:.2g}"
            )


@app.command("estimate-calibrate")
def estimate_calibrate(
    trials: Annotated[int, typer.Option(min=1, help="Windows drawn per shift and size.")] = 200,
    rows: Annotated[list[int], typer.Option(min=10, help="Window size(s) to test.")] = [500, 1000],
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    json_output: Annotated[bool, typer.Option("--json", help="One JSON line per cell.")] = False,
) -> None:
    """Benchmark the label-free MAE estimate against the realized MAE on held-out windows."""
    import json

    from housing import intervals, registry
    from housing.data import DataNotFoundError, load_split
    from housing.monitoring.estimate_calibrate import calibrate_estimate

    settings, client = _registry_client()
    try:
        held_out = load_split(settings.data_dir)[1]
    except DataNotFoundError as exc:
        fail(str(exc))
    champion = registry.champion(client, settings.model_name)
    if champion is None:
        fail(f"no champion of {settings.model_name!r} yet: run `housing train`")
    uri = settings.mlflow_tracking_uri
    bands = intervals.load(champion.run_id, uri)
    if bands is None:
        fail(f"champion v{champion.version} has no intervals: retrain it with `housing train`")
    pipeline = registry.load_model(settings.model_name, champion.version, tracking_uri=uri)
    for cell in calibrate_estimate(pipeline, bands, held_out, rows, trials, seed):
        if json_output:
            typer.echo(json.dumps(cell.as_dict(), sort_keys=True))
        else:
            typer.echo(
                f"{cell.shift:<8} {cell.rows:>5} rows: estimated MAE {cell.estimated_mae:.3f}"
                f" vs realized {cell.realized_mae:.3f}; within ±10% in"
                f" {cell.within_tolerance:6.1%} of {cell.trials} windows"
            )


@app.command()
def simulate(
    url: Annotated[str, typer.Option(help="The API's base URL.")] = "http://127.0.0.1:8000",
    drift: Annotated[str, typer.Option(help="Shift: none, income, coastal or age.")] = "none",
    rate: Annotated[float, typer.Option(help="Prediction requests per second.")] = 5.0,
    duration: Annotated[float, typer.Option(help="Seconds to run (also caps the count).")] = 60.0,
    batch: Annotated[int, typer.Option(help="Houses per request (>1 uses /predict/batch).")] = 1,
    feedback: Annotated[float, typer.Option(help="Share of predictions given feedback.")] = 0.5,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON line.")] = False,
) -> None:
    """Send realistic traffic (held-out houses, optionally shifted) and feedback to an API."""
    import json

    from housing.data import DataNotFoundError
    from housing.monitoring import simulate as stage
    from housing.monitoring.traffic import ApiUnreachableError
    from housing.settings import get_settings

    try:
        stage.check_bounds(rate, duration, batch)
        pool = stage.traffic_pool(get_settings().data_dir, drift)
    except (ValueError, DataNotFoundError) as exc:
        fail(str(exc))
    with _api_client(url, timeout=30.0) as client:
        try:
            report = stage.simulate(
                client,
                pool,
                drift=drift,
                rate=rate,
                duration=duration,
                batch=batch,
                feedback_share=feedback,
                seed=seed,
            )
        except (ValueError, ApiUnreachableError) as exc:
            fail(str(exc))
    if json_output:
        typer.echo(json.dumps(report.as_dict(), sort_keys=True))
    else:
        typer.echo(
            f"{report.requests} requests ({drift}) in {report.seconds:.1f} s: "
            f"{report.predicted} houses predicted, {report.refused} refused, {report.failed} "
            f"failed; {report.feedback} feedback sent; statuses {report.statuses}"
        )
    if report.failed:
        raise typer.Exit(1)


@app.command()
def evaluate(
    url: Annotated[str, typer.Option(help="The API's base URL.")] = "http://127.0.0.1:8000",
    data: Annotated[
        Path | None,
        typer.Option(help="Labelled CSV (8 features + MedHouseVal); default: the test split."),
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Replay only the first N rows.")] = None,
    history: Annotated[
        Path | None, typer.Option(help="JSON-lines history (default: reports/evaluations.jsonl).")
    ] = None,
    send_feedback: Annotated[
        bool, typer.Option("--feedback/--no-feedback", help="Send each true value as feedback.")
    ] = True,
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Replay a labelled dataset through a running API; report accuracy and latency."""
    import json

    from pandas.errors import ParserError

    from housing.data import DataNotFoundError
    from housing.monitoring import evaluate as stage
    from housing.monitoring.traffic import ApiUnreachableError
    from housing.settings import get_settings
    from housing.validation import DataValidationError

    settings = get_settings()
    try:
        dataset = stage.load_dataset(data, settings.data_dir, limit)
    except DataValidationError as exc:
        for line in exc.lines():
            typer.echo(f"error: {line}", err=True)
        raise typer.Exit(2) from None
    except DataNotFoundError as exc:
        fail(str(exc))
    except (OSError, ParserError, UnicodeDecodeError) as exc:
        fail(f"{data}: cannot read it as CSV: {exc}")
    with _api_client(url, timeout=30.0) as client:
        try:
            report = stage.evaluate(client, dataset, feedback=send_feedback)
        except ApiUnreachableError as exc:
            fail(str(exc))
    path = history or settings.reports_dir / "evaluations.jsonl"
    try:
        stage.append_history(path, report)
    except OSError as exc:
        fail(f"cannot write the history {path}: {exc}")
    if json_output:
        typer.echo(json.dumps(report, sort_keys=True))
    else:
        acc, lat = report["accuracy"], report["latency_ms"]
        versions = ",".join(report["model_versions"])
        typer.echo(
            f"{report['predicted']}/{report['sent']} predicted by v{versions}: "
            f"RMSE {acc['rmse']}, MAE {acc['mae']}, R² {acc['r2']}; latency ms p50 {lat['p50']} "
            f"p95 {lat['p95']} p99 {lat['p99']}; appended to {path}"
        )
    if report["failed"]:
        raise typer.Exit(1)


# --- closed loop: data batches and retraining ------------------------------------------------


@app.command()
def upload(
    path: Annotated[Path, typer.Argument(help="CSV with the 8 features and MedHouseVal.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print the batch as JSON.")] = False,
) -> None:
    """Check a labelled CSV against the spec and store it as a data batch for retraining."""
    import json

    from housing.batches import BatchRejectedError, BatchStoreError, store_batch
    from housing.settings import get_settings

    try:
        payload = path.read_bytes()
    except OSError as exc:
        fail(f"{path}: cannot read: {exc.strerror or exc}", 2)
    try:
        batch, created = store_batch(get_settings().data_dir, payload, path.name)
    except BatchRejectedError as exc:
        for line in exc.lines():
            typer.echo(f"error: {line}", err=True)
        raise typer.Exit(2) from None
    except (BatchStoreError, OSError) as exc:
        fail(str(exc))
    if json_output:
        typer.echo(json.dumps(batch.as_dict() | {"created": created}, sort_keys=True))
    else:
        state = "stored" if created else "already stored"
        typer.echo(f"{state}: batch {batch.id} ({batch.rows} rows, sha256 {batch.sha256[:12]})")


@app.command()
def batches(
    json_output: Annotated[bool, typer.Option("--json", help="One JSON line per batch.")] = False,
) -> None:
    """List the stored data batches (oldest first) with their rows and content hashes."""
    import json

    from housing.batches import BatchStoreError, read_index
    from housing.settings import get_settings

    try:
        stored = read_index(get_settings().data_dir)
    except BatchStoreError as exc:
        fail(str(exc))
    for batch in stored:
        if json_output:
            typer.echo(json.dumps(batch.as_dict(), sort_keys=True))
        else:
            typer.echo(
                f"{batch.id}  {batch.rows:>7} rows  sha256 {batch.sha256[:12]}  {batch.source}"
            )
    if not stored and not json_output:
        typer.echo("no batches yet: `housing upload FILE` or POST /data/upload")


@app.command()
def retrain(
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the job's result as one JSON line.")
    ] = False,
    batch: Annotated[
        list[str] | None, typer.Option("--batch", help="Use this batch only (repeat; default all).")
    ] = None,
    feedback: Annotated[
        bool,
        typer.Option("--feedback/--no-feedback", help="Add the prediction log's labelled inputs."),
    ] = True,
    dvc: Annotated[
        bool, typer.Option("--dvc/--no-dvc", help="`dvc add data/batches` first (in a DVC repo).")
    ] = True,
    job: Annotated[
        str | None, typer.Option("--job", help="Run as this queued job (how the API starts it).")
    ] = None,
) -> None:
    """Retrain on the training split + feedback + data batches; the promotion gate decides."""
    import json
    import os

    from sqlalchemy.exc import SQLAlchemyError

    from housing import jobs
    from housing import retrain as stage
    from housing import train as training
    from housing.batches import BatchStoreError, DvcError
    from housing.data import DataNotFoundError, ParamsError
    from housing.registry import RegistryError
    from housing.settings import get_settings
    from housing.tracking import TrackingUnavailableError
    from housing.validation import DataValidationError

    _quiet_mlflow()
    settings, job_settings = get_settings(), jobs.get_retrain_settings()
    database_url = _service_settings().database_url
    if job is not None and hasattr(os, "nice"):  # Windows: the API starts it at low priority
        os.nice(job_settings.retrain_nice)  # the API shares these cores

    def work(record: jobs.JobRecord) -> dict:
        request = stage.RetrainRequest(
            record.batches,
            record.feedback,
            record.trigger,
            record.id,
            anonymous_feedback=job_settings.retrain_anonymous_feedback,
        )
        return stage.retrain(
            settings,
            training.load_params(settings.params_file),
            request,
            database_url=database_url,
            feedback_limit=job_settings.retrain_feedback_limit,
            dvc=dvc,
            auto_promote_alerts=job_settings.auto_promote_alert_retrains,
        )

    try:
        done = jobs.execute(job_settings.jobs_dir, job, work, batches=batch, feedback=feedback)
    except (jobs.JobBusyError, ValueError) as exc:
        fail(str(exc))
    except (
        DataNotFoundError,
        DataValidationError,
        ParamsError,
        TrackingUnavailableError,
        RegistryError,
        BatchStoreError,
        DvcError,
    ) as exc:
        fail(str(exc))
    except SQLAlchemyError as exc:
        fail(f"cannot read the prediction log {database_url}: {str(exc).splitlines()[0]}")
    result = done.result or {}
    if json_output:
        typer.echo(json.dumps(result | {"job_id": done.id}, sort_keys=True))
        return
    for c in result["candidates"]:
        typer.echo(f"{c['model']:<18} test RMSE {c['rmse']:.4f}  CV RMSE {c['cv_rmse']:.4f}")
    data, champ = result["data"], result["champion"]
    typer.echo(
        f"data: training split + {data['feedback_rows']} feedback rows + {data['batch_rows']} "
        f"rows from {len(data['batches'])} batches ({data['held_out_dropped']} rows near "
        f"held-out houses dropped, {sum(data['feedback_refused'].values())} untrusted feedback "
        "rows left out)"
    )
    moved = "moved to" if result["champion_changed"] else "stays"
    typer.echo(f"{result['reason']}; champion {moved} v{champ['version']} (job {done.id})")


if __name__ == "__main__":  # pragma: no cover
    app()
