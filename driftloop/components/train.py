"""train: a seeded PyTorch MLP with early stopping and checkpoints, exported to one ONNX file.

The export folds the fitted preprocessing in front of the MLP and is compared with
PyTorch on the validation rows; the gate bounds that difference (`train.onnx_tolerance`).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftloop.components.columns import ColumnRoles, python_value
from driftloop.components.feature import fill_categories, load_meta
from driftloop.constants import MODEL_FILE, ONNX_OUTPUT_PREDICTION, ONNX_OUTPUT_PROBABILITIES, TRANSFORM_FILE
from driftloop.errors import TrainingError

if TYPE_CHECKING:
    import numpy as np
    import torch

    from driftloop.components.context import RunContext
    from driftloop.mlflow_gateway import Tracker
    from driftloop.spec import TrainSpec


@dataclass
class FitResult:
    module: Any
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_val_loss: float = math.inf
    stopped_early: bool = False
    device: str = "cpu"
    seconds: float = 0.0
    samples_seen: int = 0  # by this process
    world_size: int = 1


@dataclass(frozen=True)
class TrainResult:
    model_path: Path
    onnx_max_abs_diff: float
    onnx_output_scale: float
    best_epoch: int
    epochs_run: int
    best_val_loss: float
    device: str
    fit_seconds: float


def resolve_device(requested: str) -> str:
    import torch

    if requested == "cuda" and not torch.cuda.is_available():
        raise TrainingError("train.device is 'cuda' but no CUDA device is available; use 'auto' or 'cpu'")
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def build_mlp(n_features: int, hidden_sizes: list[int], n_outputs: int, dropout: float = 0.0) -> torch.nn.Module:
    from torch import nn

    layers: list[nn.Module] = []
    width = n_features
    for size in hidden_sizes:
        layers += [nn.Linear(width, size), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = size
    layers.append(nn.Linear(width, n_outputs))
    return nn.Sequential(*layers)


def fit(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, *,
        spec: TrainSpec, task: str, n_outputs: int, checkpoint_dir: Path | None = None,
        on_epoch: Any = None) -> FitResult:
    """Mini-batch Adam with early stopping on validation loss; the best weights are restored.

    Batches are slices of tensors already on the device (no DataLoader), which is what
    keeps this loop as fast as a hand-written one.

    Inside a torchrun process group the model is a DistributedDataParallel replica: every
    rank draws the same permutation each epoch and trains on its own equal share of it,
    with `batch_size` kept as the global batch, and all ranks follow rank 0's validation
    loss so they stop at the same epoch.
    """
    import numpy as np
    import torch
    from torch import nn

    from driftloop.distributed import active_world

    world = active_world()
    torch.manual_seed(spec.seed)
    np.random.seed(spec.seed)
    device = resolve_device(spec.device)
    if world.distributed and device == "cuda":
        device = f"cuda:{world.local_rank}"
    model = build_mlp(x_train.shape[1], spec.hidden_sizes, n_outputs, spec.dropout).to(device)
    trained: nn.Module = model
    if world.distributed:
        from torch.nn.parallel import DistributedDataParallel

        trained = DistributedDataParallel(model, device_ids=[world.local_rank] if device.startswith("cuda") else None)
    optimizer = torch.optim.Adam(trained.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    loss_fn: nn.Module = nn.CrossEntropyLoss() if task == "classification" else nn.MSELoss()
    xt = torch.as_tensor(x_train, dtype=torch.float32, device=device)
    xv = torch.as_tensor(x_val, dtype=torch.float32, device=device)
    target_dtype = torch.long if task == "classification" else torch.float32
    yt = torch.as_tensor(y_train, dtype=target_dtype, device=device)
    yv = torch.as_tensor(y_val, dtype=target_dtype, device=device)
    if task != "classification":
        yt, yv = yt.reshape(-1, 1), yv.reshape(-1, 1)
    generator = torch.Generator(device="cpu").manual_seed(spec.seed)
    result = FitResult(module=model, device=device, world_size=world.size)
    best_state: dict[str, Any] | None = None
    waited = 0
    # Equal shares keep every rank's number of backward passes equal, which DDP requires;
    # the few rows past a multiple of the world size sit out one epoch, different ones each time.
    share = len(xt) // world.size
    if share == 0:
        raise TrainingError(f"{len(xt)} training rows cannot be shared by {world.size} workers")
    batch = max(1, math.ceil(spec.batch_size / world.size))
    started = time.perf_counter()
    for epoch in range(1, spec.epochs + 1):
        trained.train()
        order = torch.randperm(len(xt), generator=generator)[world.rank::world.size][:share].to(device)
        total = 0.0
        for start in range(0, share, batch):
            index = order[start:start + batch]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(trained(xt[index]), yt[index])
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(index)
        result.samples_seen += share
        model.eval()
        with torch.no_grad():
            val_loss = float(loss_fn(model(xv), yv))
        train_loss = total / share
        if world.distributed:
            train_loss, val_loss = _agree(train_loss, val_loss, world.size, device)
        row = {"train_loss": train_loss, "val_loss": val_loss}
        result.history.append(row)
        if on_epoch is not None:
            on_epoch(epoch, row)
        if val_loss < result.best_val_loss - 1e-6:
            result.best_val_loss, result.best_epoch, waited = val_loss, epoch, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if checkpoint_dir is not None:
                torch.save({"epoch": epoch, "state_dict": best_state, "val_loss": val_loss}, checkpoint_dir / "best.pt")
        else:
            waited += 1
            if waited >= spec.patience:
                result.stopped_early = True
                break
    result.seconds = time.perf_counter() - started
    if checkpoint_dir is not None:
        torch.save({"epoch": len(result.history), "state_dict": model.state_dict()}, checkpoint_dir / "last.pt")
    if best_state is not None:
        model.load_state_dict(best_state)
    if not math.isfinite(result.best_val_loss):
        raise TrainingError("training diverged: validation loss is not finite; lower train.lr")
    return result


def _agree(train_loss: float, val_loss: float, world_size: int, device: str) -> tuple[float, float]:
    """The mean training loss over ranks, and rank 0's validation loss, so every rank stops alike."""
    import torch
    import torch.distributed as dist

    losses = torch.tensor([train_loss / world_size, val_loss], dtype=torch.float64, device=device)
    mean = losses[:1].clone()
    dist.all_reduce(mean)
    dist.broadcast(losses, src=0)
    return float(mean[0]), float(losses[1])


def exportable(module: torch.nn.Module, task: str, y_mean: float = 0.0, y_std: float = 1.0) -> torch.nn.Module:
    """The module as served: softmax for classifiers, target de-standardisation for regressors."""
    import torch
    from torch import nn

    class Rescale(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("scale", torch.tensor([[y_std]], dtype=torch.float32))
            self.register_buffer("shift", torch.tensor([[y_mean]], dtype=torch.float32))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * self.scale + self.shift

    tail = nn.Softmax(dim=1) if task == "classification" else Rescale()
    return nn.Sequential(module.cpu().eval(), tail).eval()


def run(features_dir: Path, *, spec: TrainSpec, out_dir: Path, tracker: Tracker | None = None) -> TrainResult:
    """Fit on the train split, export `model.onnx` into `out_dir`, verify it, log to MLflow."""
    import joblib
    import numpy as np
    import onnx
    import pandas as pd
    import torch

    from driftloop.onnx_model import OnnxModel, merge, mlp_to_onnx, transform_to_onnx

    out_dir.mkdir(parents=True, exist_ok=True)
    checkpoints = out_dir / "checkpoints"
    checkpoints.mkdir(exist_ok=True)
    meta = load_meta(features_dir)
    roles = ColumnRoles(target=meta["target"], numeric=meta["numeric"], categorical=meta["categorical"])
    task, classes = meta["task"], meta["classes"]
    transform = joblib.load(features_dir / TRANSFORM_FILE)
    train = pd.read_parquet(features_dir / "train.parquet")
    val = pd.read_parquet(features_dir / "val.parquet")
    x_train = transform.transform(fill_categories(train, roles)[roles.features]).astype(np.float32)
    x_val = transform.transform(fill_categories(val, roles)[roles.features]).astype(np.float32)
    y_mean = y_std = None
    if task == "classification":
        index = {c: i for i, c in enumerate(classes)}
        y_train = train[roles.target].map(lambda v: index[python_value(v)]).to_numpy()
        y_val = val[roles.target].map(lambda v: index[python_value(v)]).to_numpy()
        n_outputs = len(classes)
    else:
        raw_train = train[roles.target].to_numpy(dtype=np.float64)
        y_mean, y_std = float(raw_train.mean()), float(raw_train.std() or 1.0)
        y_train = ((raw_train - y_mean) / y_std).astype(np.float32)
        y_val = ((val[roles.target].to_numpy(dtype=np.float64) - y_mean) / y_std).astype(np.float32)
        n_outputs = 1
    if tracker is not None:
        tracker.log_params({f"train.{k}": v for k, v in spec.model_dump().items()}
                           | {"task": task, "n_features": x_train.shape[1], "train_rows": len(x_train)})
    from driftloop.distributed import TrainingInputs, active_world, share_training_inputs

    world = active_world()
    if world.distributed:
        share_training_inputs(TrainingInputs(x_train, y_train, x_val, y_val, spec, task, n_outputs))
        if tracker is not None:
            tracker.log_params({"train.world_size": world.size})
    result = fit(x_train, y_train, x_val, y_val, spec=spec, task=task, n_outputs=n_outputs, checkpoint_dir=checkpoints)
    served = exportable(result.module, task, y_mean or 0.0, y_std or 1.0)
    output = ONNX_OUTPUT_PROBABILITIES if task == "classification" else ONNX_OUTPUT_PREDICTION
    model = merge(transform_to_onnx(transform, roles), mlp_to_onnx(served, x_train.shape[1], output),
                  task=task, classes=classes, roles=roles)
    model_path = out_dir / MODEL_FILE
    onnx.save(model, model_path)
    with torch.no_grad():
        expected = served(torch.as_tensor(x_val)).numpy()
    got = OnnxModel(model_path).run(val)
    diff = float(np.max(np.abs(got.reshape(expected.shape) - expected)))
    (out_dir / "train.json").write_text(json.dumps({
        "history": result.history, "best_epoch": result.best_epoch, "stopped_early": result.stopped_early,
        "device": result.device, "onnx_max_abs_diff": diff, "fit_seconds": result.seconds,
        "world_size": result.world_size, "samples_seen_by_rank0": result.samples_seen}, indent=2))
    if tracker is not None:
        tracker.log_metric_series([(row, epoch) for epoch, row in enumerate(result.history, start=1)])
        tracker.log_metrics({"best_val_loss": result.best_val_loss, "best_epoch": result.best_epoch,
                             "onnx_max_abs_diff": diff})
    # Regression outputs are in target units (prices in the hundreds carry float32 noise
    # above 1e-4), so the bound is relative to the output's size, and absolute below 1.
    # Train measures parity; the gate alone decides on it (`train.onnx_tolerance`), once.
    scale = max(1.0, float(np.max(np.abs(expected))))
    return TrainResult(model_path, diff, scale, result.best_epoch, len(result.history), result.best_val_loss,
                       result.device, result.seconds)


def execute(ctx: RunContext, features_dir: Path, *, out_dir: Path) -> TrainResult:
    """Train and export; log the parameters, the loss curve, the ONNX model, its checkpoints and `train.json`."""
    from driftloop.constants import MODEL_ARTIFACT_DIR, TRAIN_DIR

    outcome = run(features_dir, spec=ctx.spec.train, out_dir=out_dir, tracker=ctx.tracker)
    ctx.tracker.log_onnx_model(outcome.model_path, out_dir / MODEL_ARTIFACT_DIR, MODEL_ARTIFACT_DIR)
    ctx.tracker.log_artifacts(out_dir / "checkpoints", "checkpoints")
    ctx.tracker.log_artifact(out_dir / "train.json", TRAIN_DIR)
    return outcome
