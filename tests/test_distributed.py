"""Distributed data-parallel training: real `torchrun` processes talking gloo on loopback."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import DRIFTLOOP, REPO, Cli, loaded_after, registry_for

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1"]

FIT_SCRIPT = textwrap.dedent("""
    import json, os, sys
    import numpy as np, torch, torch.distributed as dist
    from driftloop.components.train import fit
    from driftloop.spec import TrainSpec

    out = sys.argv[1]
    dist.init_process_group("gloo")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1001, 6)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64)
    spec = TrainSpec(hidden_sizes=[16], epochs=6, batch_size=64, patience=50, device="cpu", lr=0.01)
    result = fit(x[:800], y[:800], x[800:], y[800:], spec=spec, task="classification", n_outputs=2)
    rank = dist.get_rank()
    torch.save(result.module.state_dict(), f"{out}/rank{rank}.pt")
    with open(f"{out}/rank{rank}.json", "w") as f:
        json.dump({"history": result.history, "samples_seen": result.samples_seen,
                   "world_size": result.world_size}, f)
    dist.destroy_process_group()
""")


def test_fit_under_torchrun_keeps_replicas_identical_and_shards_the_rows(tmp_path: Path) -> None:
    import torch

    script = tmp_path / "fit.py"
    script.write_text(FIT_SCRIPT)
    done = subprocess.run([*TORCHRUN, "--nproc-per-node=2", str(script), str(tmp_path)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    states = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    assert all(r["world_size"] == 2 for r in ranks)
    # each rank trained on half of the 800 rows every epoch
    epochs = len(ranks[0]["history"])
    assert epochs == 6
    assert ranks[0]["samples_seen"] == ranks[1]["samples_seen"] == 400 * epochs
    # gradients were averaged: the replicas end bit-identical, and agree on every epoch's losses
    assert states[0].keys() == states[1].keys()
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    assert ranks[0]["history"] == ranks[1]["history"]
    assert ranks[0]["history"][-1]["val_loss"] < ranks[0]["history"][0]["val_loss"]


@pytest.mark.slow
def test_driftloop_run_under_torchrun_registers_one_model(cli: Cli, mlflow_uri: str) -> None:
    assert cli("example", "-o", "data.csv", "--rows", "800").returncode == 0
    done = subprocess.run([*TORCHRUN, "--nproc-per-node=2", "-m", "driftloop", "run", "--data", "data.csv",
                           "--target", "churned", "--model", "ddp-churn", "--set", "train.epochs=30",
                           "--set", "evaluate.latency_samples=20", "--json", "out.json"],
                          cwd=cli.cwd, env=cli.env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((cli.cwd / "out.json").read_text())
    assert result["status"] == "completed" and result["deployed"] is True
    registry = registry_for(mlflow_uri)
    assert [v["version"] for v in registry.versions("ddp-churn")] == ["1"]
    run = registry.client.get_run(result["run_id"])
    assert run.data.params["train.world_size"] == "2"


@pytest.mark.slow
def test_a_failure_on_rank_0_before_training_stops_every_rank(cli: Cli, mlflow_uri: str) -> None:
    assert cli("example", "-o", "data.csv", "--rows", "200").returncode == 0
    done = subprocess.run([*TORCHRUN, "--nproc-per-node=2", "-m", "driftloop", "run", "--data", "data.csv",
                           "--target", "no_such_column", "--model", "ddp-broken"],
                          cwd=cli.cwd, env=cli.env, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "no_such_column" in done.stderr
    assert "rank 0 stopped before training" in done.stderr
    assert "ddp-broken" not in registry_for(mlflow_uri).model_names()


def test_a_malformed_torchrun_environment_is_one_clear_line(cli: Cli) -> None:
    assert cli("example", "-o", "data.csv", "--rows", "50").returncode == 0
    done = subprocess.run([*DRIFTLOOP, "run", "--data", "data.csv", "--target", "churned"], cwd=cli.cwd,
                          env=cli.env | {"WORLD_SIZE": "two"}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("error: torchrun environment: RANK/WORLD_SIZE")


def test_one_process_learns_its_world_without_importing_torch() -> None:
    """Every train step asks for the world; a scikit-learn family's run needs torch for nothing else (1.5 s)."""
    code = "from driftloop.distributed import active_world\nassert active_world().size == 1"
    assert loaded_after(code, ("torch",)) == []


def test_the_process_group_carries_the_tensors_train_device_makes() -> None:
    """NCCL carries CUDA tensors only: `train.device: cpu` on a GPU node took NCCL and failed its first all-reduce."""
    from driftloop.distributed import backend_for

    assert backend_for("cpu", cuda=True) == "gloo" and backend_for("auto", cuda=True) == "nccl"
    assert backend_for("auto", cuda=False) == "gloo" and backend_for("cuda", cuda=True) == "nccl"


@pytest.mark.slow
def test_a_family_without_torch_under_torchrun_lets_the_other_ranks_exit(cli: Cli, mlflow_uri: str) -> None:
    """`train.model: linear` with 2 workers: rank 0 trains alone and tells rank 1 so, and the Job succeeds."""
    assert cli("example", "-o", "data.csv", "--rows", "400").returncode == 0
    done = subprocess.run([*TORCHRUN, "--nproc-per-node=2", "-m", "driftloop", "run", "--data", "data.csv",
                           "--target", "churned", "--model", "ddp-linear", "--set", "train.model=linear",
                           "--set", "evaluate.latency_samples=20", "--json", "out.json"],
                          cwd=cli.cwd, env=cli.env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "rank 1: the model trained in rank 0 alone" in done.stderr
    result = json.loads((cli.cwd / "out.json").read_text())
    assert result["status"] == "completed"
    assert registry_for(mlflow_uri).client.get_run(result["run_id"]).data.params["train.chosen_model"] == "linear"


@pytest.mark.slow
def test_a_user_module_trains_data_parallel_on_every_rank(cli: Cli, mlflow_uri: str) -> None:
    """Rank 1 builds its replica from the source the spec carries, as a pod without the file would."""
    assert cli("example", "-o", "data.csv", "--rows", "400").returncode == 0
    (cli.cwd / "net.py").write_text("from torch import nn\n\n\ndef build(n_features, n_outputs, task, params):\n"
                                    "    return nn.Sequential(nn.Linear(n_features, params['width']), nn.ReLU(),\n"
                                    "                         nn.Linear(params['width'], n_outputs))\n")
    scratch = cli.cwd / "tmp"
    scratch.mkdir()
    done = subprocess.run([*TORCHRUN, "--nproc-per-node=2", "-m", "driftloop", "run", "--data", "data.csv",
                           "--target", "churned", "--model", "ddp-user", "--set", "train.module=net.py:build",
                           "--set", "train.params={width: 8}", "--set", "train.epochs=3",
                           "--set", "evaluate.latency_samples=20", "--json", "out.json"],
                          cwd=cli.cwd, env=cli.env | {"TMPDIR": str(scratch)}, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "rank 1: training done" in done.stderr
    # rank 1 wrote the source into a scratch folder of its own, gone with its process
    assert not [p.name for p in scratch.iterdir() if p.name.startswith("driftloop-")]
    result = json.loads((cli.cwd / "out.json").read_text())
    params = registry_for(mlflow_uri).client.get_run(result["run_id"]).data.params
    assert result["status"] == "completed" and params["train.world_size"] == "2"
    assert params["train.chosen_model"] == "module"
