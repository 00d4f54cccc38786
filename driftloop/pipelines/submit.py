"""`driftloop submit`: the compiled pipeline as a run on a Kubeflow Pipelines endpoint.

Everything that can be checked locally (the spec, its KFP parameters, the compile)
is checked before the endpoint is contacted. Endpoint failures become one line:
unreachable, credentials refused, or the API's own message.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftloop.errors import PipelineServiceError, UsageError
from driftloop.pipelines.backends import Backend, for_backend

if TYPE_CHECKING:
    from driftloop.spec import Spec

TOKEN_PATH_ENV = "KF_PIPELINES_SA_TOKEN_PATH"
# KFP v2 run states after which nothing changes any more.
FINAL_STATES = ("SUCCEEDED", "FAILED", "CANCELED", "SKIPPED")


@dataclass(frozen=True)
class SubmitResult:
    run_id: str
    experiment_id: str
    state: str | None  # the run's state when submit returned (final when waited for)
    url: str | None  # the run's page in the KFP UI

    @property
    def succeeded(self) -> bool:
        return self.state == "SUCCEEDED"


def submit_pipeline(spec: Spec, *, host: str, experiment: str, namespace: str | None = None,
                    token: str | None = None, run_name: str | None = None, wait: bool = False,
                    image: str | None = None, timeout_s: float = 6 * 3600, poll_s: float = 5.0,
                    backend: Backend | None = None) -> SubmitResult:
    """Compile the pipeline for `spec`, create the experiment if missing, and start a run.

    Args:
        spec: the run's spec; its values are the run's parameters.
        host: the KFP API endpoint, e.g. `https://kfp.example.org`.
        experiment: KFP experiment name; created when it does not exist.
        namespace: Kubeflow profile namespace (multi-user deployments).
        token: bearer token; default: the file named by `$KF_PIPELINES_SA_TOKEN_PATH`, if set.
        run_name: default `<model name>-<UTC time>`.
        wait: follow the run until it reaches a final state.
        image: the project image for every task (default: `$DRIFTLOOP_IMAGE` or this version's).
        timeout_s: how long `wait` follows the run.
        poll_s: seconds between state checks while waiting.
        backend: the KFP backend release the IR must run on (default: the newest); see `backends`.

    Raises:
        InvalidSpec: a value that cannot be a KFP parameter (before any contact).
        PipelineServiceError: endpoint unreachable, token rejected, request refused, or wait timed out.

    Example:
        >>> submit_pipeline(load_spec("driftloop.yaml"), host="https://kfp.example.org", experiment="churn").url
        'https://kfp.example.org/#/runs/details/7c0e…'
    """
    from driftloop.pipelines.parameters import pipeline_arguments
    from driftloop.pipelines.pipeline import build_training_pipeline

    arguments = pipeline_arguments(spec)
    token = token or _token_from_file()
    name = run_name or f"{spec.model_name}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
    with tempfile.TemporaryDirectory(prefix="driftloop-submit-") as tmp:
        package = Path(tmp) / "pipeline.yaml"
        backend = backend or Backend()
        _compile(build_training_pipeline(spec, image=image, final_status=backend.final_status), package, backend)
        with _endpoint_errors(host):
            client = _client(host, namespace, token)
            found = client.create_experiment(name=experiment, namespace=namespace)
            # an s3:// (or other remote) `output` is where KFP keeps this run's artifacts
            root = spec.output if spec.output and "://" in spec.output else None
            run = client.run_pipeline(experiment_id=found.experiment_id, job_name=name,
                                      pipeline_package_path=str(package), params=arguments, pipeline_root=root)
            state = _state(run)
            if wait:
                state = _follow(client, run.run_id, timeout_s=timeout_s, poll_s=poll_s)
    return SubmitResult(run.run_id, found.experiment_id, state, f"{host.rstrip('/')}/#/runs/details/{run.run_id}")


def _compile(pipeline: Any, path: Path, backend: Backend) -> None:
    from kfp import compiler

    compiler.Compiler().compile(pipeline, str(path))
    path.write_text(for_backend(path.read_text(encoding="utf-8"), backend), encoding="utf-8")


def _token_from_file() -> str | None:
    path = os.environ.get(TOKEN_PATH_ENV)
    if not path:
        return None
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as e:
        raise UsageError(f"{TOKEN_PATH_ENV}={path}: cannot read the token file ({e.strerror})") from e


def _client(host: str, namespace: str | None, token: str | None) -> Any:
    import warnings

    import kfp
    import kfp_server_api

    # One health check first: kfp.Client's own retries it 5 times, 5 s apart, logging tracebacks,
    # before a wrong host or token could be reported.
    config = kfp_server_api.Configuration(host=host.rstrip("/"))
    if token:
        config.api_key["authorization"], config.api_key_prefix["authorization"] = token, "Bearer"
    kfp_server_api.HealthzServiceApi(kfp_server_api.ApiClient(config)).healthz_service_get_healthz(
        _request_timeout=30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # "this client only works with KFP 2.0.0-beta.2 and later"
        return kfp.Client(host=host, namespace=namespace or "kubeflow", existing_token=token)


def _state(run: Any) -> str | None:
    return str(run.state) if getattr(run, "state", None) else None


def _follow(client: Any, run_id: str, *, timeout_s: float, poll_s: float) -> str:
    """Poll until the run reaches a final state (kfp.Client's own wait never ends on CANCELED)."""
    deadline = time.monotonic() + timeout_s
    while True:
        state = _state(client.get_run(run_id)) or "PENDING"
        if state in FINAL_STATES:
            return state
        if time.monotonic() > deadline:
            raise PipelineServiceError(f"run {run_id} still {state} after {timeout_s:g}s; "
                                       "it keeps running on the cluster")
        time.sleep(poll_s)


@contextlib.contextmanager
def _endpoint_errors(host: str) -> Iterator[None]:
    """kfp.Client's exceptions → one line naming the endpoint; its chatter ("Experiment details: …") hidden."""
    import kfp_server_api
    import urllib3

    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    except kfp_server_api.ApiException as e:
        if e.status in (401, 403):
            raise PipelineServiceError(f"KFP endpoint {host} rejected the credentials (HTTP {e.status}); "
                                       f"check --token or ${TOKEN_PATH_ENV}") from e
        raise PipelineServiceError(f"KFP endpoint {host} refused the request (HTTP {e.status}): "
                                   f"{_api_message(e)}") from e
    except (urllib3.exceptions.HTTPError, OSError) as e:
        reason = getattr(e, "reason", None) or e
        raise PipelineServiceError(f"KFP endpoint unreachable at {host}: {str(reason).splitlines()[0][:200]}") from e


def _api_message(error: Any) -> str:
    import json

    try:
        body = json.loads(error.body or "{}")
    except ValueError:
        return str(error.body or error.reason)[:200]
    return str(body.get("message") or body.get("error") or error.reason)[:200]
