"""`driftloop compile` and `driftloop submit`. Imports stay light: kfp loads inside the commands."""

from __future__ import annotations

import sys
from typing import Any

import click

from driftloop.console import Console, write_json

_SPEC_OPTIONS = [
    click.option("--spec", "spec_path", type=click.Path(dir_okay=False), help="YAML spec (see `driftloop init`)."),
    click.option("--data", help="Training table: local path or s3:// URI."),
    click.option("--target", help="Column to predict."),
    click.option("--model", "model_name", help="Registered model name (default: the data file's name)."),
    click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a spec value, e.g. train.epochs=30."),
    click.option("--param", "params", multiple=True, metavar="NAME=JSON",
                 help="Override a pipeline parameter (a spec section), e.g. train='{\"epochs\": 30}'."),
    click.option("--image", help="Project image for every task (default: $DRIFTLOOP_IMAGE or this version's)."),
]


def _spec_options(command: Any) -> Any:
    for option in reversed(_SPEC_OPTIONS):
        command = option(command)
    return command


def spec_for(spec_path: str | None, data: str | None, target: str | None, model_name: str | None,
             overrides: tuple[str, ...], params: tuple[str, ...], *, required: bool) -> Any:
    """The spec from the file and flags, `--param` applied; None when not required and nothing given."""
    from driftloop.pipelines.parameters import apply_params
    from driftloop.spec import load_spec

    if spec_path is None and (data is None or target is None):
        if required or data or target or overrides or params or model_name:
            raise click.UsageError("give --spec FILE, or both --data and --target")
        return None
    extra = list(overrides) + ([f"registry.model_name={model_name}"] if model_name else [])
    return apply_params(load_spec(spec_path, data=data, target=target, overrides=extra), params)


@click.command("compile")
@click.option("-o", "--output", default="driftloop_pipeline.yaml", show_default=True,
              type=click.Path(dir_okay=False), help="Where the KFP IR YAML goes.")
@click.option("--pipeline", type=click.Choice(["training", "drift-then-retrain"]), default="training",
              show_default=True, help="training, or drift-then-retrain: a drift check against the @champion's "
              "reference that runs the training pipeline on drift.")
@_spec_options
@click.option("--secret", default=None, help="Kubernetes Secret with MLflow/S3 credentials [driftloop-credentials].")
@click.option("--components", "components_dir", metavar="DIR", type=click.Path(file_okay=False),
              help="Instead of the pipeline, write each KFP component's spec as DIR/<name>.yaml.")
@click.option("--target-backend", "backend", metavar="VERSION", default="latest", show_default=True,
              help="KFP backend release the IR must run on, e.g. 2.3: older ones get no optional secrets and "
              "no final-status exit handler (see the README's table).")
def compile_command(output: str, pipeline: str, spec_path: str | None, data: str | None, target: str | None,
                    model_name: str | None, overrides: tuple[str, ...], params: tuple[str, ...], image: str | None,
                    secret: str | None, components_dir: str | None, backend: str) -> None:
    """Write the pipeline as KFP v2 IR YAML, uploadable in the KFP UI.

    Without a spec the parameters default to the spec model's defaults (data is then
    required at run time, and for drift-then-retrain also current and registry); with
    one, to its values. With --components, write the component specs instead, for
    pipelines of your own.
    """
    from driftloop.pipelines.backends import parse_backend
    from driftloop.pipelines.compile import compile_components, compile_pipeline

    target_backend = parse_backend(backend)
    if components_dir is None and not output.endswith((".yaml", ".yml")):  # KFP's compiler takes nothing else
        raise click.BadParameter(f"{output!r}: the pipeline is written as a .yaml (or .yml) file", param_hint="-o")
    if components_dir is not None:
        _refuse_pipeline_options(click.get_current_context())
        written = compile_components(components_dir, image=image)
        Console().info(f"wrote {len(written)} component specs to {components_dir}")
        return
    spec = spec_for(spec_path, data, target, model_name, overrides, params, required=False)
    compile_pipeline(output, spec=spec, image=image, secret=secret, pipeline=pipeline, backend=target_backend)
    Console().info(f"wrote {output}")


def _refuse_pipeline_options(ctx: click.Context) -> None:
    """`--components` writes each component's spec alone: an option that shapes the pipeline would be dropped
    without a word (a component spec for a 2.3 backend would still need PipelineTaskFinalStatus)."""
    names = {"output": "-o", "pipeline": "--pipeline", "spec_path": "--spec", "data": "--data", "target": "--target",
             "model_name": "--model", "overrides": "--set", "params": "--param", "secret": "--secret",
             "backend": "--target-backend"}
    given = [flag for name, flag in names.items()
             if ctx.get_parameter_source(name) not in (None, click.core.ParameterSource.DEFAULT)]
    if given:
        raise click.UsageError(f"{', '.join(given)}: not used with --components, which writes each component's "
                               "spec as it is (only --image applies); compile the pipeline for these")


@click.command("submit")
@click.option("--host", envvar="KF_PIPELINES_ENDPOINT", required=True,
              help="KFP API endpoint (or $KF_PIPELINES_ENDPOINT), e.g. https://kfp.example.org.")
@click.option("--experiment", help="KFP experiment, created when missing (default: the model name).")
@click.option("--namespace", help="Kubeflow profile namespace (multi-user deployments).")
@click.option("--token", help="Bearer token (default: the file at $KF_PIPELINES_SA_TOKEN_PATH).")
@click.option("--run-name", help="Run name (default: <model>-<UTC time>).")
@click.option("--wait", is_flag=True, help="Follow the run and exit with its final state (0 only if SUCCEEDED).")
@click.option("--timeout", "timeout_s", type=float, default=6 * 3600, show_default=True, help="Seconds --wait follows.")
@click.option("--poll-interval", "poll_s", type=click.FloatRange(min=0.01), default=5.0, show_default=True,
              help="Seconds between state checks with --wait.")
@_spec_options
@click.option("--json", "json_out", metavar="FILE", help="Write the result as JSON ('-' for stdout).")
@click.option("--target-backend", "backend", metavar="VERSION", default="latest", show_default=True,
              help="The endpoint's KFP backend release, e.g. 2.3 (as for compile).")
def submit_command(host: str, experiment: str | None, namespace: str | None, token: str | None,
                   run_name: str | None, wait: bool, timeout_s: float, poll_s: float, spec_path: str | None, data: str | None,
                   target: str | None, model_name: str | None, overrides: tuple[str, ...], params: tuple[str, ...],
                   image: str | None, json_out: str | None, backend: str) -> None:
    """Start the pipeline as a run on a Kubeflow Pipelines endpoint."""
    from dataclasses import asdict

    from driftloop.pipelines.backends import parse_backend
    from driftloop.pipelines.submit import submit_pipeline

    target_backend = parse_backend(backend)
    spec = spec_for(spec_path, data, target, model_name, overrides, params, required=True)
    console = Console()
    result = submit_pipeline(spec, host=host, experiment=experiment or spec.model_name, namespace=namespace,
                             token=token, run_name=run_name, wait=wait, image=image, timeout_s=timeout_s,
                             poll_s=poll_s, backend=target_backend)
    console.info(f"run {result.run_id} in experiment {experiment or spec.model_name}: {result.state or 'submitted'}")
    console.info(f"  {result.url}")
    if json_out:
        write_json(asdict(result), json_out)
    if wait and not result.succeeded:
        console.error(f"run {result.run_id} ended {result.state}")
        sys.exit(1)
