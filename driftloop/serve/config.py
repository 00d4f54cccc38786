"""Everything a serving worker needs, passed from the CLI process to each worker in one env variable.

Workers are separate processes started by the HTTP server, so the configuration travels
as JSON in `DRIFTLOOP_SERVE_CONFIG` rather than as Python objects.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass

CONFIG_ENV = "DRIFTLOOP_SERVE_CONFIG"


@dataclass(frozen=True)
class ServeConfig:
    model_name: str
    alias: str
    tracking_uri: str
    state_dir: str  # shared by the workers: model cache, reload signal, Prometheus files
    initial_version: str
    poll_interval_s: float = 30.0  # 0 disables polling; POST /admin/reload still works
    max_body_bytes: int = 10 * 1024 * 1024
    max_rows: int = 10_000
    access_log: bool = True
    prediction_log: str | None = None
    prediction_log_rate: float = 0.0
    admin_token: str | None = None
    batch_max_rows: int = 64  # 0: no micro-batching
    batch_max_wait_ms: float = 0.0
    grpc_host: str = "127.0.0.1"
    grpc_port: int | None = None  # the Open Inference Protocol over gRPC too (`oip_grpc`); None: HTTP only

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> ServeConfig:
        raw = os.environ.get(CONFIG_ENV)
        if not raw:
            raise RuntimeError(f"{CONFIG_ENV} is not set: start workers with `driftloop serve`")
        return cls(**json.loads(raw))


def default_workers() -> int:
    """One worker per core this process may use: CPU affinity, capped by a cgroup v2 CPU quota (Kubernetes limits)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        with open("/sys/fs/cgroup/cpu.max", encoding="ascii") as handle:
            quota, period = handle.read().split()
        if quota != "max":
            cores = min(cores, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)
