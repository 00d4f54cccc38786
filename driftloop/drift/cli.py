"""The `driftloop drift` command: flags in, one report out, the exit code CI acts on."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import click

from driftloop.console import Console, check_writable, write_json
from driftloop.constants import DRIFT_ARTIFACT_DIR, DRIFT_HTML_FILE


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from driftloop.durations import parse_duration

    if value is None:
        return None
    try:
        parse_duration(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None
    return value


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--current", required=True, help="Current data: CSV, Parquet or JSON Lines (e.g. the prediction log), "
              "local path or s3:// URI.")
@click.option("--model", "model_name", help="Registered model; the reference defaults to the sample stored with its "
              "@champion, and the drift policy to the one in its spec.")
@click.option("--reference", help="Reference table instead of the champion's stored sample.")
@click.option("--read", "read_options", multiple=True, metavar="KEY=VALUE",
              help="CSV reading of --current (and --reference) over the sniffed dialect, as in data.read: sep "
              "('\\s+' for runs of spaces), decimal, thousands, na_values, keep_default_na, encoding, skipinitialspace.")
@click.option("--target", help="Label column to leave out of the comparison (default: the model's target).")
@click.option("--report", "report_out", metavar="FILE", help="Write the self-contained HTML report here.")
@click.option("--json", "json_out", metavar="FILE", help="Write the report as JSON ('-' for stdout).")
@click.option("--summary", "summary_out", metavar="FILE", help="Write a short JSON outcome (under 4 KiB, e.g. a "
              "pod's termination message): decision, drifted features, report location, retrain.")
@click.option("--p-val", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Significance before correction [drift.p_val, 0.05].")
@click.option("--correction", type=click.Choice(["bonferroni", "fdr"]), help="Multiple-testing correction "
              "[drift.correction, bonferroni].")
@click.option("--min-samples", type=click.IntRange(min=1), help="Values a feature needs in each table "
              "[drift.min_samples, 100].")
@click.option("--time-column", "time_columns", multiple=True, metavar="COLUMN", help="A column reported as a time "
              "range instead of tested (repeat for each; replaces the inferred ones: date columns' year and year "
              "columns) [drift.time_columns].")
@click.option("--no-time-columns", is_flag=True, help="Test every column, a date's year and year columns too.")
@click.option("--retrain", type=click.Choice(["local", "kfp", "k8s"]), help="On drift, retrain: in-process, as a "
              "Kubeflow Pipelines run, or by asking the MLTrainingJob's operator.")
@click.option("--cooldown", callback=_duration, help="Least time between retrains, e.g. 30m, 6h [drift.cooldown, 6h].")
@click.option("--retrain-data", type=click.Choice(["current", "reference+current"]),
              help="What a local/KFP retrain trains on [drift.retrain_data, reference+current].")
@click.option("--window", help="Label of the data window for the dedupe key (default: the current data's hash).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override the champion's spec for the "
              "retrain, e.g. train.epochs=30.")
@click.option("--k8s-job", help="MLTrainingJob to retrain (--retrain k8s).")
@click.option("--namespace", default="default", show_default=True, help="Its namespace.")
@click.option("--kfp-host", envvar="DRIFTLOOP_KFP_HOST", help="Kubeflow Pipelines endpoint (--retrain kfp).")
@click.option("--kfp-experiment", default="driftloop", show_default=True)
@click.option("--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI or ./.driftloop).")
@click.option("--no-track", is_flag=True, help="Compare files only: no MLflow run, no champion, no retrain.")
@click.option("--out-dir", type=click.Path(file_okay=False), default=".driftloop/drift", show_default=True,
              help="Where reports and staged retrain data are written.")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
def drift(current: str, model_name: str | None, reference: str | None, read_options: tuple[str, ...],
          target: str | None, report_out: str | None,
          json_out: str | None, summary_out: str | None, p_val: float | None, correction: str | None, min_samples: int | None,
          time_columns: tuple[str, ...], no_time_columns: bool, retrain: str | None, cooldown: str | None,
          retrain_data: str | None, window: str | None,
          overrides: tuple[str, ...], k8s_job: str | None, namespace: str, kfp_host: str | None, kfp_experiment: str,
          tracking_uri: str | None, no_track: bool, out_dir: str, quiet: bool) -> None:
    """Compare current data with the reference; on drift, retrain at most once per cooldown.

    \b
    Exit codes: 0 no drift, 3 drift found (the JSON says whether a retrain
    started or was suppressed, and why), 1 failure, 2 usage error.

    \b
      driftloop drift --model customers --current live.parquet
      driftloop drift --reference ref.csv --current live.csv --report drift.html --json drift.json --no-track
      driftloop drift --model customers --current s3://bucket/today.csv --retrain local --cooldown 6h
    """
    from driftloop.drift.check import DriftRequest
    from driftloop.drift.retrain import check_and_retrain
    from driftloop.spec import read_flags

    if time_columns and no_time_columns:
        raise click.UsageError("--time-column and --no-time-columns contradict each other: give one")
    for destination, flag in ((report_out, "--report"), (json_out, "--json"), (summary_out, "--summary")):
        check_writable(destination, flag)
    console = Console(quiet=quiet)
    request = DriftRequest(current=current, reference=reference, model_name=model_name, target=target,
                           tracking_uri=tracking_uri, track=not no_track, p_val=p_val, correction=correction,
                           min_samples=min_samples, cooldown=cooldown, retrain=retrain, retrain_data=retrain_data,
                           time_columns=[] if no_time_columns else (list(time_columns) or None),
                           window=window, overrides=list(overrides), out_dir=Path(out_dir), k8s_job=k8s_job,
                           namespace=namespace, kfp_host=kfp_host, kfp_experiment=kfp_experiment,
                           read=read_flags(read_options))
    outcome = check_and_retrain(request, console=console)
    if report_out:
        shutil.copyfile(outcome.report_dir / DRIFT_HTML_FILE, report_out)
        console.info(f"wrote {report_out}")
    else:  # where to look, as `run` points at its evaluation report
        run_id = outcome.data.get("run_id")
        console.info(f"drift report: {outcome.report_dir / DRIFT_HTML_FILE}"
                     + (f" (and runs:/{run_id}/{DRIFT_ARTIFACT_DIR}/{DRIFT_HTML_FILE})" if run_id else ""))
    if json_out:
        write_json(outcome.data, json_out)
    if summary_out:
        from driftloop.drift.summary import outcome_summary

        write_json(outcome_summary(outcome.data, exit_code=outcome.exit_code), summary_out)
    if outcome.data.get("error"):
        console.error(outcome.data["error"])
    sys.exit(outcome.exit_code)
