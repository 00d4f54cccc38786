"""The torch family: driftloop's training loop for the MLP and for a user's `nn.Module`.

Seeded mini-batch Adam with early stopping on validation loss, checkpoints of the best and
last weights, DistributedDataParallel under torchrun. The exported module ends in a softmax
(classification) or the target's de-standardisation (regression), as served.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftloop.components.models.base import FittedModel, TrainingData, balanced_weights
from driftloop.errors import TrainingError

if TYPE_CHECKING:
    import numpy as np
    import torch

    from driftloop.spec import TrainSpec

# (n_features, n_outputs) -> an untrained module; every rank builds its replica with it
ModuleBuilder = Callable[[int, int], "torch.nn.Module"]


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
    out_of_time: bool = False  # stopped by `deadline` (train.model: auto's budget)


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


def module_builder(spec: TrainSpec, task: str) -> ModuleBuilder:
    """How every rank builds the module for `spec`: the user's (`train.module`) or the MLP."""
    if spec.module is not None:
        from driftloop.components.models.user_code import torch_builder

        return torch_builder(spec, task)
    return lambda n_features, n_outputs: build_mlp(n_features, spec.hidden_sizes, n_outputs, spec.dropout)


def fit(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, *,
        spec: TrainSpec, task: str, n_outputs: int, checkpoint_dir: Path | None = None,
        on_epoch: Any = None, build: ModuleBuilder | None = None, deadline: float | None = None) -> FitResult:
    """Mini-batch Adam with early stopping on validation loss; the best weights are restored.

    Batches are slices of tensors already on the device (no DataLoader), which is what
    keeps this loop as fast as a hand-written one.

    Inside a torchrun process group the model is a DistributedDataParallel replica: every
    rank draws the same permutation each epoch and trains on its own equal share of it,
    with `batch_size` kept as the global batch, and all ranks follow rank 0's validation
    loss so they stop at the same epoch.

    Args:
        build: the module to train (default: `module_builder(spec, task)`).
        deadline: a `time.perf_counter()` value after which no new epoch starts (rank 0's, under torchrun).
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
    model = (build or module_builder(spec, task))(x_train.shape[1], n_outputs).to(device)
    trained: nn.Module = model
    if world.distributed:
        from torch.nn.parallel import DistributedDataParallel

        trained = DistributedDataParallel(model, device_ids=[world.local_rank] if device.startswith("cuda") else None)
    optimizer = torch.optim.Adam(trained.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    loss_fn = _loss(spec, task, y_train, n_outputs, device)
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
        out_of_time = deadline is not None and time.perf_counter() >= deadline
        if world.distributed:  # rank 0's clock decides, or a rank would wait on a collective the others left
            train_loss, val_loss, out_of_time = _agree(train_loss, val_loss, out_of_time, world.size, device)
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
        if out_of_time:
            result.out_of_time = True
            break
    result.seconds = time.perf_counter() - started
    if checkpoint_dir is not None:
        torch.save({"epoch": len(result.history), "state_dict": model.state_dict()}, checkpoint_dir / "last.pt")
    if best_state is not None:
        model.load_state_dict(best_state)
    if not math.isfinite(result.best_val_loss):
        raise TrainingError("training diverged: validation loss is not finite; lower train.lr")
    return result


def _loss(spec: TrainSpec, task: str, y_train: np.ndarray, n_outputs: int, device: str) -> torch.nn.Module:
    """Cross-entropy (class-weighted under `train.class_weight: balanced`) or mean squared error."""
    import torch
    from torch import nn

    if task != "classification":
        return nn.MSELoss()
    if spec.class_weight == "balanced":
        weights = torch.as_tensor(balanced_weights(y_train, n_outputs), dtype=torch.float32, device=device)
        return nn.CrossEntropyLoss(weight=weights)
    return nn.CrossEntropyLoss()


def _agree(train_loss: float, val_loss: float, out_of_time: bool, world_size: int,
           device: str) -> tuple[float, float, bool]:
    """The mean training loss over ranks, and rank 0's validation loss and clock, so every rank stops alike."""
    import torch
    import torch.distributed as dist

    losses = torch.tensor([train_loss / world_size, val_loss, float(out_of_time)], dtype=torch.float64, device=device)
    mean = losses[:1].clone()
    dist.all_reduce(mean)
    dist.broadcast(losses, src=0)
    return float(mean[0]), float(losses[1]), bool(losses[2])


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


def train_torch(data: TrainingData, *, spec: TrainSpec, output_name: str, checkpoint_dir: Path | None,
                family: str = "mlp", build: ModuleBuilder | None = None, deadline: float | None = None,
                on_epoch: Any = None) -> FittedModel:
    """Fit with driftloop's loop (sharing the inputs with the other torchrun ranks first) and export."""
    import torch

    from driftloop.distributed import TrainingInputs, active_world, share_training_inputs
    from driftloop.onnx_model import mlp_to_onnx

    y_train = data.y_train if data.classification else data.standardised(data.y_train)
    y_val = data.y_val if data.classification else data.standardised(data.y_val)
    if active_world().distributed:
        share_training_inputs(TrainingInputs(data.x_train, y_train, data.x_val, y_val, spec, data.task,
                                             data.n_outputs))
    result = fit(data.x_train, y_train, data.x_val, y_val, spec=spec, task=data.task, n_outputs=data.n_outputs,
                 checkpoint_dir=checkpoint_dir, build=build, deadline=deadline, on_epoch=on_epoch)
    served = exportable(result.module, data.task, data.y_mean, data.y_std)
    with torch.no_grad():
        served_val = served(torch.as_tensor(data.x_val)).numpy()
    return FittedModel(family=family, graph=mlp_to_onnx(served, data.n_features, output_name), served_val=served_val,
                       val_loss=result.best_val_loss, history=result.history, best_epoch=result.best_epoch,
                       epochs_run=len(result.history), stopped_early=result.stopped_early, device=result.device,
                       seconds=result.seconds,
                       details={"world_size": result.world_size, "samples_seen_by_rank0": result.samples_seen,
                                "out_of_time": result.out_of_time})
