"""Train throughput: `fit()` against the plain PyTorch loop most people would write.

Same tensors, same MLP (`build_mlp`), same seed, epochs, batch size and Adam settings;
`patience >= epochs` so early stopping never cuts `fit()` short. The plain loop is the
idiomatic `DataLoader(TensorDataset(X, y), batch_size=128, shuffle=True)` one. Both run
in this process, alternating, so drift in machine load hits both alike.
Goal: ratio = ours / plain samples per second >= 0.9.

`fit()`'s time includes what it does beyond the plain loop (a validation pass and a
best-weights copy each epoch): that is part of what it costs a user.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from _common import median, write_result
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from driftloop.components.train import build_mlp, fit
from driftloop.spec import TrainSpec

NAME = "train_throughput"
ROWS, VAL_ROWS, FEATURES = 20_000, 4_000, 30
HIDDEN = [64, 32]  # TrainSpec's default widths
EPOCHS, BATCH, LR, SEED = 20, 128, 1e-3, 42
REPEATS = 3
GOAL_MIN_RATIO = 0.9
DEVICE = "cpu"  # the project pins the CPU torch wheel; both loops run on the same device


def make_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Random features with a learnable binary label, seeded so every run trains on the same tensors."""
    rng = np.random.default_rng(SEED)
    x = rng.standard_normal((ROWS + VAL_ROWS, FEATURES), dtype=np.float32)
    y = (x @ rng.standard_normal(FEATURES).astype(np.float32) > 0).astype(np.int64)
    return x[:ROWS], y[:ROWS], x[ROWS:], y[ROWS:]


def ours(data: tuple[np.ndarray, ...], epochs: int) -> float:
    x, y, xv, yv = data
    spec = TrainSpec(hidden_sizes=HIDDEN, epochs=epochs, batch_size=BATCH, lr=LR, seed=SEED,
                     patience=epochs, device=DEVICE)
    started = time.perf_counter()
    result = fit(x, y, xv, yv, spec=spec, task="classification", n_outputs=2, checkpoint_dir=None)
    seconds = time.perf_counter() - started
    assert not result.stopped_early and len(result.history) == epochs, "early stopping must not shorten the run"
    return seconds


def plain(data: tuple[np.ndarray, ...], epochs: int) -> float:
    x, y = data[0], data[1]
    started = time.perf_counter()
    torch.manual_seed(SEED)
    model = build_mlp(FEATURES, HIDDEN, 2).to(DEVICE)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    loader = DataLoader(TensorDataset(torch.as_tensor(x), torch.as_tensor(y)), batch_size=BATCH, shuffle=True)
    model.train()
    for _ in range(epochs):
        for xb, yb in loader:
            xb, yb = xb.to(DEVICE), yb.to(DEVICE)
            optimizer.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
    return time.perf_counter() - started


def main() -> None:
    data = make_data()
    # Warm-up: first-call costs (allocator, kernel selection) are not throughput.
    ours(data, 1)
    plain(data, 1)
    timings: dict[str, list[float]] = {"ours": [], "plain": []}
    for _ in range(REPEATS):
        timings["ours"].append(ours(data, EPOCHS))
        timings["plain"].append(plain(data, EPOCHS))
    samples = ROWS * EPOCHS
    rate: dict[str, Any] = {k: [round(samples / s, 1) for s in v] for k, v in timings.items()}
    ours_rate, plain_rate = median(rate["ours"]), median(rate["plain"])
    ratio = ours_rate / plain_rate
    path = write_result(NAME, {
        "unit": "samples/s", "measured": round(ours_rate, 1), "baseline": round(plain_rate, 1),
        "ratio": round(ratio, 4), "goal": {"metric": "ratio", "op": ">=", "value": GOAL_MIN_RATIO},
        "passed_goal": ratio >= GOAL_MIN_RATIO,
        "notes": "measured = fit() samples/s; baseline = plain DataLoader loop samples/s (medians)",
        "config": {"rows": ROWS, "val_rows": VAL_ROWS, "features": FEATURES, "hidden": HIDDEN, "epochs": EPOCHS,
                   "batch_size": BATCH, "lr": LR, "device": DEVICE, "repeats": REPEATS},
        "samples_per_s": rate, "seconds": {k: [round(s, 4) for s in v] for k, v in timings.items()}})
    print(f"{NAME}: ours {ours_rate:,.0f}/s vs plain {plain_rate:,.0f}/s, ratio {ratio:.3f} "
          f"(goal >= {GOAL_MIN_RATIO}) -> {path}")


if __name__ == "__main__":
    main()
