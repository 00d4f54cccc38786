"""The `driftloop` command line. Imports here stay light; each command imports what it needs."""

from __future__ import annotations

import errno
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from driftloop import __version__
from driftloop.console import Console, check_writable, write_json
from driftloop.drift.cli import drift
from driftloop.errors import DriftloopError
from driftloop.operator_cli import operator as operator_command
from driftloop.serve.command import serve

if TYPE_CHECKING:
    from driftloop.mlflow_gateway import MLflowGateway
    from driftloop.runner import RunResult
    from driftloop.spec import Spec


class _Group(click.Group):
    """Maps DriftloopError to one line and its exit code, and any other exception to one line and exit 1 (a server
    that went away mid-command, a bug); `--debug` shows the traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort, EOFError):
            raise  # usage errors, --help, a closed stdin: click's own handling
        except DriftloopError as e:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            Console().error(str(e))
            sys.exit(e.exit_code)
        except Exception as e:
            if (ctx.obj and ctx.obj.get("debug")) or (isinstance(e, OSError) and e.errno == errno.EPIPE):
                raise  # a closed pipe (`| head`) is click's to end quietly
            message = (str(e).strip().splitlines() or [""])[0][:500]
            Console().error(f"internal error: {type(e).__name__}{': ' + message if message else ''} "
                            "(driftloop --debug ... shows the traceback)")
            sys.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="driftloop")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """driftloop: validate → feature → train → evaluate → gated deploy, with MLflow.

    \b
    Start with the bundled example:
      driftloop example -o customers.csv
      driftloop run --data customers.csv --target churned
    """
    ctx.obj = {"debug": debug}


@cli.command()
@click.option("--spec", "spec_path", type=click.Path(dir_okay=False), help="YAML spec (see `driftloop init`).")
@click.option("--data", help="Training table: CSV or Parquet, local path or s3:// URI.")
@click.option("--target", help="Column to predict.")
@click.option("--model", "model_name", help="Registered model name (default: the data file's name).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a spec value, e.g. train.epochs=30.")
@click.option("--json", "json_out", metavar="FILE", help="Write the result as JSON ('-' for stdout).")
@click.option("--runner", type=click.Choice(["in-process", "kfp-local"]), default="in-process", show_default=True,
              help="in-process: the steps in this process; kfp-local: the KFP components via kfp.local.")
@click.option("--json-max-bytes", type=click.IntRange(min=512), metavar="N",
              help="Keep the --json output within N bytes, compact (a pod's termination message holds 4 KiB): "
                   "step times, then metrics, then gate reasons are left out.")
@click.option("--no-deploy", is_flag=True, help="Stop after the gate; the caller registers.")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE",
              help="Extra tag on the MLflow run and on the version it registers.")
@click.option("--once-by", "once_by", multiple=True, metavar="KEY",
              help="A --tag key that names this registration (repeatable): a version already tagged with the "
                   "same values is promoted if it is not yet and reported, and nothing trains (a retry registers once).")
@click.option("--force", is_flag=True, help="Train even when a version from the same data and spec exists.")
@click.option("--bad-input-exit", type=click.IntRange(1, 255), metavar="CODE",
              help="Exit with CODE (not 1) when a step failed on its data or spec, which no retry fixes "
                   "(the operator's Jobs fail at once on it).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
def run(spec_path: str | None, data: str | None, target: str | None, model_name: str | None,
        overrides: tuple[str, ...], json_out: str | None, json_max_bytes: int | None, runner: str, no_deploy: bool,
        tags: tuple[str, ...], once_by: tuple[str, ...], force: bool, bad_input_exit: int | None, quiet: bool) -> None:
    """Run the whole pipeline and promote the model if it passes the gate."""
    from driftloop.runner import killed_on_sigterm
    from driftloop.spec import load_spec

    if spec_path is None and (data is None or target is None):
        raise click.UsageError("give --spec FILE, or both --data and --target")
    check_writable(json_out, "--json")
    extra = list(overrides) + ([f"registry.model_name={model_name}"] if model_name else [])
    spec = load_spec(spec_path, data=data, target=target, overrides=extra)
    console = Console(quiet=quiet)
    if runner == "kfp-local":
        from driftloop.pipelines.local import run_kfp_local
        from driftloop.runner import identical_version

        if no_deploy or tags or once_by:
            raise click.UsageError("--no-deploy, --tag and --once-by work with --runner in-process only")
        result = (None if force else identical_version(spec)) or run_kfp_local(spec, console=console)
    else:
        run_tags = dict(tag.partition("=")[::2] for tag in tags)
        if any(not key for key in run_tags):
            raise click.UsageError("--tag expects KEY=VALUE")
        if missing := [key for key in once_by if key not in run_tags]:
            raise click.UsageError(f"--once-by {missing[0]}: no --tag {missing[0]}=VALUE names its value")

        def report(stopped: RunResult) -> None:  # SIGTERM: the run is ended as KILLED, then this, then exit 143
            if json_out:
                _write_result(stopped, json_out, json_max_bytes)
            console.error(stopped.error or "stopped by SIGTERM")

        with killed_on_sigterm(report):
            result = _run_in_process(spec, console, deploy=not no_deploy, tags=run_tags, force=force,
                                     once_by=once_by)
    _summary(console, result)
    if json_out:
        _write_result(result, json_out, json_max_bytes)
    if result.traceback and click.get_current_context().obj.get("debug"):
        console.traceback(result.traceback)
    if result.error:
        console.error(result.error)
    sys.exit(bad_input_exit if bad_input_exit and result.status == "failed" and not result.retryable
             else result.exit_code)


def _write_result(result: RunResult, destination: str, max_bytes: int | None) -> None:
    if max_bytes is None:
        write_json(result.to_json(), destination)
        return
    from driftloop.runner import brief_text

    text = brief_text(result.to_brief_json(max_bytes))
    if destination == "-":
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    else:
        Path(destination).write_text(text, encoding="utf-8")


def _run_in_process(spec: Spec, console: Console, *, deploy: bool, tags: dict[str, str], force: bool,
                    once_by: tuple[str, ...]) -> RunResult:
    from driftloop.distributed import current_world, process_group
    from driftloop.runner import run_worker

    world = current_world()  # started by torchrun: one process per worker, rank 0 runs the pipeline
    with process_group(world, spec.train.device):
        if not world.primary:
            sys.exit(run_worker(console))
        from driftloop.runner import run_pipeline

        return run_pipeline(spec, console=console, deploy=deploy, tags=tags, force=force, once_by=once_by)


def _summary(console: Console, result: object) -> None:
    from driftloop.constants import EVALUATION_DIR, EVALUATION_REPORT_FILE
    from driftloop.runner import RunResult

    assert isinstance(result, RunResult)
    if result.status == "unchanged" or (result.already_registered and result.steps[0].status == "skipped"):
        # nothing ran: the one reason says which version stands
        console.info(f"{result.model_name}: {result.gate['reasons'][0].removeprefix('SKIP ').removeprefix('PASS ')}")
        return
    console.table("steps", ["step", "status", "seconds"], [(s.name, s.status, s.seconds) for s in result.steps])
    if result.candidates:
        console.table(f"train.model auto: validation {result.candidate_metric} (lower is better)",
                      ["model", result.candidate_metric, "kept"],
                      [(family, score, "yes" if family == result.trained_model else "")
                       for family, score in result.candidates.items()])
    elif result.trained_model is not None:
        console.info(f"model: {result.trained_model}")
    if result.metrics:
        champion = result.champion_metrics or {}
        console.table("metrics (holdout)", ["metric", "candidate", f"champion v{result.champion_version}" if champion
                                            else "champion"],
                      [(k, v, champion.get(k)) for k, v in result.metrics.items()])
    if result.gate["reasons"]:
        console.info(f"gate: {'PASSED' if result.gate['passed'] else 'DECLINED'}")
        for reason in result.gate["reasons"]:
            console.info(f"  {reason}")
        # every runner's gate logs the report to the run, so its MLflow URI is the one place to point at
        console.info(f"evaluation report: runs:/{result.run_id}/{EVALUATION_DIR}/{EVALUATION_REPORT_FILE}")
    if result.status == "completed":
        console.info(f"deployed {result.model_name} v{result.model_version} as @champion" if result.deployed
                     else f"not deployed; @champion of {result.model_name} unchanged")


@cli.command()
@click.option("--data", required=True, help="Training table (path or s3:// URI).")
@click.option("--target", required=True, help="Column to predict.")
@click.option("-o", "--output", default="driftloop.yaml", show_default=True, type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init(data: str, target: str, output: str, force: bool) -> None:
    """Write a spec with every default spelled out, after checking the table's header names the target."""
    import os

    from driftloop.spec import load_spec
    from driftloop.table import check_target, read_columns

    if Path(output).exists() and not force:
        raise click.UsageError(f"{output} exists; pass --force to overwrite it")
    check_target(read_columns(data), target, data)
    if "://" not in data:  # the spec's data.path is read relative to the spec file
        data = os.path.relpath(Path(data).resolve(), Path(output).resolve().parent)
    spec = load_spec(None, data=data, target=target)
    header = "# driftloop spec: every key with its default. Only data.path and data.target are required.\n"
    Path(output).write_text(header + spec.to_yaml(), encoding="utf-8")
    Console().info(f"wrote {output}")


@cli.command()
@click.option("--name", type=click.Choice(["customers", "house_prices"]), default="customers", show_default=True)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, allow_dash=True),
              help=".csv or .parquet; - writes CSV to stdout")
@click.option("--rows", type=click.IntRange(min=10), default=None, help="Rows to generate.")
@click.option("--seed", type=int, default=None)
@click.option("--shift", "shifts", multiple=True, metavar="COLUMN=SD", help="Drift: shift a numeric mean by SD std devs.")
@click.option("--plan-mix", help="Drift: basic,standard,pro probabilities, e.g. 0.2,0.3,0.5.")
@click.option("--label-shift", type=float, default=0.0, help="Drift: added to the churn log-odds.")
def example(name: str, output: str, rows: int | None, seed: int | None, shifts: tuple[str, ...],
            plan_mix: str | None, label_shift: float) -> None:
    """Generate the bundled example table (deterministic), optionally drifted."""
    from driftloop import example as examples

    kwargs: dict[str, object] = {}
    if rows is not None:
        kwargs["rows"] = rows
    if seed is not None:
        kwargs["seed"] = seed
    if name != "customers" and (shifts or plan_mix or label_shift):
        raise click.UsageError(f"--shift, --plan-mix and --label-shift drift the customers example only, not {name!r}")
    if name == "customers":
        mean_shift = {}
        columns = {("customer_age" if key == "age" else key): key for key in examples.NUMERIC_SCALES}
        for item in shifts:
            column, _, value = item.partition("=")
            if column not in columns and column not in examples.NUMERIC_SCALES:
                raise click.UsageError(f"--shift {column}: not a numeric column ({', '.join(columns)})")
            mean_shift[columns.get(column, column)] = _number(value, f"--shift {column}")
        mix = tuple(_number(x, "--plan-mix") for x in plan_mix.split(",")) if plan_mix else None
        if mix is not None and (len(mix) != 3 or abs(sum(mix) - 1) > 1e-6 or min(mix) < 0):
            raise click.UsageError("--plan-mix needs three probabilities (0 to 1) that sum to 1")
        kwargs["drift"] = examples.DriftKnobs(mean_shift=mean_shift, plan_mix=mix, label_shift=label_shift)  # type: ignore[arg-type]
    frame = examples.EXAMPLES[name][1](**kwargs)
    if output == "-":  # CSV on stdout, as for `--json -`: `driftloop example -o - | head`
        frame.to_csv(sys.stdout, index=False)
        sys.stdout.flush()
        return
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    if output.endswith((".parquet", ".pq")):
        frame.to_parquet(output, index=False)
    else:
        frame.to_csv(output, index=False)
    Console().info(f"wrote {len(frame)} rows to {output} (target: {examples.EXAMPLES[name][0]})")


def _number(text: str, flag: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise click.UsageError(f"{flag}: {text!r} is not a number") from None


def _registry(tracking_uri: str | None) -> MLflowGateway:
    from driftloop.mlflow_gateway import connect

    return connect(tracking_uri)


@cli.command()
@click.option("--model", "model_name", help="Registered model (default: all).")
@click.option("--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI or ./.driftloop).")
@click.option("--json", "json_out", metavar="FILE", help="Write the listing as JSON ('-' for stdout).")
def models(model_name: str | None, tracking_uri: str | None, json_out: str | None) -> None:
    """List versions with aliases, key metrics and lineage."""
    from driftloop.constants import TAG_DATA_SHA256, TAG_DATA_URI
    from driftloop.mlflow_gateway import validate_model_name

    check_writable(json_out, "--json")
    registry = _registry(tracking_uri)
    # a name typed here is checked; names MLflow lists are listed whatever they hold ("Fraud Model")
    names = [validate_model_name(model_name)] if model_name else registry.model_names()
    console = Console()
    listing = {}
    for name in names:
        versions = registry.versions(name)
        listing[name] = versions
        rows = []
        for v in versions:
            m = v["metrics"]
            key = "roc_auc" if "roc_auc" in m else ("accuracy" if "accuracy" in m else "rmse")
            rows.append((v["version"], ",".join("@" + a for a in v["aliases"]), f"{key}={m[key]:.4f}" if key in m else None,
                         m.get("latency_p99_ms"), v["tags"].get(TAG_DATA_URI), (v["tags"].get(TAG_DATA_SHA256) or "")[:12],
                         (v["run_id"] or "")[:12]))
        # the listing is the answer, so stdout; with `--json -` stdout is the JSON's alone
        console.table(name, ["version", "aliases", "metric", "p99 ms", "data", "data sha256", "run"], rows,
                      result=json_out != "-")
    if not names:
        console.info("no registered models yet; run `driftloop run` first")
    if json_out:
        write_json(listing, json_out)


@cli.command()
@click.option("--model", "model_name", required=True, help="Registered model name.")
@click.option("--data", required=True, help="Rows to score: CSV, Parquet or JSON Lines, local path or s3:// URI.")
@click.option("-o", "--output", required=True, help="Where to write them with predictions: .csv, .parquet or "
              ".jsonl (local or s3://).")
@click.option("--version", "model_version", help="Registered version to use (default: @champion).")
@click.option("--alias", help="Alias of the version to use (default: champion).")
@click.option("--read", "read_options", multiple=True, metavar="KEY=VALUE",
              help="CSV reading over the sniffed dialect, as in data.read: sep, decimal, thousands, na_values "
                   "(added to the model's), encoding, skipinitialspace; missing text is read as the model was trained.")
@click.option("--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI or ./.driftloop).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
def predict(model_name: str, data: str, output: str, model_version: str | None, alias: str | None,
            read_options: tuple[str, ...], tracking_uri: str | None, quiet: bool) -> None:
    """Score a table with a registered version through its ONNX file, as `mlflow models predict` does."""
    from driftloop.predict import predict_table
    from driftloop.spec import read_flags

    read = read_flags(read_options)  # a typo is a usage error before any MLflow call (or a local store made)
    predict_table(gateway=_registry(tracking_uri), model_name=model_name, data=data, output=output,
                  version=model_version, alias=alias, console=Console(quiet=quiet), read=read)


@cli.command()
@click.option("--model", "model_name", required=True, help="Registered model name.")
@click.option("--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI or ./.driftloop).")
def rollback(model_name: str, tracking_uri: str | None) -> None:
    """Move @champion back to the previous champion."""
    promotion = _registry(tracking_uri).rollback(model_name)
    Console().info(f"{model_name}: @champion is v{promotion.version} again (was v{promotion.previous})")


@cli.command()
@click.option("--port", type=int, default=5000, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
def ui(port: int, host: str) -> None:
    """Open the MLflow UI on the local store (or MLFLOW_TRACKING_URI's store)."""
    import os
    import subprocess

    from driftloop.mlflow_gateway import local_artifact_root, resolve_tracking_uri

    uri = resolve_tracking_uri(None)
    if uri.startswith(("http://", "https://", "databricks")):  # a tracking server: it has its own UI
        Console().info(f"tracking server is remote; open {_without_password(uri)} in a browser")
        return
    # a file or database store (sqlite, postgresql, mysql, mssql): MLflow's server serves its UI
    # one worker: a UI for one person, not four processes on a laptop
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri, "--host", host, "--port", str(port),
               "--workers", "1"]
    root = local_artifact_root(uri)
    if root:
        command += ["--default-artifact-root", root]
    Console().info(f"MLflow UI on http://{host}:{port} for {_without_password(uri)} (Ctrl-C to stop)")
    sys.exit(subprocess.call(command, env=os.environ.copy()))


def _without_password(uri: str) -> str:
    """The URI to show people: a password in it (postgresql://user:secret@host/db) becomes ***."""
    import re

    masked = re.sub(r"(//[^:/@]*:)[^@]*@", r"\1***@", uri)  # a password may hold a '/'
    return re.sub(r"(?i)([?&]password=)[^&]*", r"\1***", masked)  # or be a query parameter (libpq)


cli.add_command(serve)


def _register_pipeline_commands() -> None:
    from driftloop.pipelines.cli import compile_command, submit_command

    cli.add_command(compile_command)
    cli.add_command(submit_command)


_register_pipeline_commands()


cli.add_command(operator_command)
cli.add_command(drift)


def main() -> None:
    cli(prog_name="driftloop")


if __name__ == "__main__":
    main()
