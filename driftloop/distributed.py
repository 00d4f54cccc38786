"""Data-parallel training across processes started by `torchrun` (one per pod in an Indexed Job).

Rank 0 runs the whole pipeline. Only the fit is parallel: when rank 0 reaches the train
step it sends the prepared arrays to every other rank, each rank trains a DistributedDataParallel
replica on its shard of every epoch, and the other ranks exit once the fit is done. Preparing
the data once and broadcasting it (rather than every rank re-running validate and feature)
guarantees every rank trains on the same rows with the same columns.

torchrun sets WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; without them the
world is one process and nothing here does anything. The other ranks' loop is `driftloop.runner.run_worker`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from driftloop.errors import TrainingError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def primary(self) -> bool:
        return self.rank == 0


def current_world() -> World:
    """The world torchrun describes in the environment (one process when it is absent)."""
    try:
        return World(rank=int(os.environ.get("RANK", "0")), size=int(os.environ.get("WORLD_SIZE", "1")),
                     local_rank=int(os.environ.get("LOCAL_RANK", "0")))
    except ValueError as e:
        raise TrainingError(f"torchrun environment: RANK/WORLD_SIZE/LOCAL_RANK must be integers ({e})") from None


def active_world() -> World:
    """The world of an initialised process group, or a single process."""
    if "torch" not in sys.modules:
        # a process group is torch's, so none was initialised in this process: importing torch (1.5 s of
        # CPU) to be told so would be every scikit-learn family's train step's largest import
        return World()
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return World(rank=dist.get_rank(), size=dist.get_world_size(),
                     local_rank=int(os.environ.get("LOCAL_RANK", "0")))
    return World()


@dataclass
class TrainingInputs:
    """What every rank needs to fit the same model: the arrays and how to fit them."""

    x_train: Any
    y_train: Any
    x_val: Any
    y_val: Any
    spec: Any  # TrainSpec
    task: str
    n_outputs: int


_shared = False  # whether rank 0 already sent the inputs (or the abort) in this group

# What rank 0 sends instead of inputs when its model trained in one process (a scikit-learn
# family, or `auto` without the MLP): the other ranks have nothing to do and exit cleanly.
NO_DISTRIBUTED_FIT = "no-distributed-fit"


def share_training_inputs(inputs: TrainingInputs | str | None) -> TrainingInputs | str | None:
    """Rank 0 sends `inputs` (None means "stop, rank 0 failed"; `NO_DISTRIBUTED_FIT`, "nothing to
    train here"); the other ranks receive them."""
    import torch.distributed as dist

    global _shared
    box = [inputs]
    dist.broadcast_object_list(box, src=0)
    _shared = True
    return box[0]


def release_workers() -> None:
    """Rank 0, after its train step: ranks still waiting for inputs (no data-parallel fit ran) exit cleanly."""
    if active_world().distributed and not _shared:
        share_training_inputs(NO_DISTRIBUTED_FIT)


def backend_for(device: str, *, cuda: bool) -> str:
    """The process group's backend for `train.device`: NCCL where training runs on CUDA, gloo on CPU."""
    return "nccl" if device == "cuda" or (device == "auto" and cuda) else "gloo"


@contextmanager
def process_group(world: World, device: str = "auto") -> Iterator[None]:
    """Join the torchrun process group for the length of a run; a no-op for one process.

    `device` is `train.device`: the backend must carry the tensors training makes (NCCL only CUDA ones), so
    `cpu` on a GPU node takes gloo.

    If rank 0 leaves without having shared the training inputs (it failed in validate,
    say), it tells the waiting ranks to stop instead of leaving them blocked.
    """
    if not world.distributed:
        yield
        return
    import torch
    import torch.distributed as dist

    global _shared
    _shared = False
    backend = backend_for(device, cuda=torch.cuda.is_available())
    if backend == "nccl":
        torch.cuda.set_device(world.local_rank)
    dist.init_process_group(backend=backend)
    try:
        yield
    finally:
        if world.primary and not _shared:
            share_training_inputs(None)
        dist.destroy_process_group()
