"""gate: one promotion policy, as a pure function of the evaluation and the spec.

It never passes on nothing: with no thresholds, the candidate must still beat the
naive baseline, keep ONNX parity and not lose to the champion on the primary metric.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftloop.components.evaluate import Evaluation
from driftloop.constants import HIGHER_IS_BETTER

if TYPE_CHECKING:
    from driftloop.components.context import RunContext
    from driftloop.spec import GateSpec, SliceGateSpec


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    message: str


@dataclass(frozen=True)
class Blessing:
    """The gate's decision as data: deploy reads only this."""

    passed: bool
    checks: list[Check]
    champion_version: str | None

    @property
    def reasons(self) -> list[str]:
        return [f"{'PASS' if c.passed else 'FAIL'} {c.message}" for c in self.checks]

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({"passed": self.passed, "reasons": self.reasons, "champion_version":
                                    self.champion_version, "checks": [asdict(c) for c in self.checks]}, indent=2))

    @classmethod
    def load(cls, path: Path) -> Blessing:
        data = json.loads(path.read_text())
        return cls(data["passed"], [Check(**c) for c in data["checks"]], data["champion_version"])


def primary_metric(task: str) -> str:
    return "roc_auc" if task == "classification" else "rmse"


def decide(evaluation: Evaluation, policy: GateSpec, *, onnx_tolerance: float) -> Blessing:
    checks: list[Check] = []
    metrics = evaluation.metrics
    checks.append(_parity_check(evaluation, onnx_tolerance))
    for name, bound in policy.min.items():
        checks.append(_bound(name, metrics.get(name), bound, at_least=True))
    for name, bound in policy.max.items():
        checks.append(_bound(name, metrics.get(name), bound, at_least=False))
    if policy.require_baseline:
        checks.append(_baseline_check(evaluation))
    checks += _champion_checks(evaluation, policy)
    checks += _window_checks(evaluation, policy)
    checks += _slice_checks(evaluation, policy.slices)
    champion = evaluation.champion["version"] if evaluation.champion else None
    return Blessing(all(c.passed for c in checks), checks, champion)


def _parity_check(evaluation: Evaluation, onnx_tolerance: float) -> Check:
    """|ONNX - native| within the tolerance, relative to the outputs' size (a regression's in its target's units):
    the reason names the bound compared, so 0.000122 is not read as passing a bound of 0.0001."""
    scale, diff = evaluation.onnx_output_scale, evaluation.onnx_max_abs_diff
    bound = onnx_tolerance * scale
    digits = next(d for d in (3, 6, 17) if d == 17 or f"{diff:.{d}g}" != f"{bound:.{d}g}")  # never "0.0001 over 0.0001"
    words = f"{bound:.{digits}g}" + (f" ({onnx_tolerance:g} x output scale {scale:.3g})" if scale != 1 else "")
    return Check("onnx_parity", diff <= bound,
                 f"onnx_max_abs_diff {diff:.{digits}g} {'within' if diff <= bound else 'over'} tolerance {words}")


def _baseline_check(evaluation: Evaluation) -> Check:
    """Beat the baseline model on the holdout: the majority class on accuracy (the mean on rmse), a fitted
    linear or gbm model on the primary metric, since a learned baseline ranks rows as well as it labels them."""
    from driftloop.components.baselines import baseline_name

    kind = evaluation.baseline_model
    name = "accuracy" if evaluation.task == "classification" else "rmse"
    primary = primary_metric(evaluation.task)
    if kind != "majority" and primary in evaluation.metrics and primary in evaluation.baseline:
        name = primary
    value, base = evaluation.metrics[name], evaluation.baseline[name]
    better = value > base if name in HIGHER_IS_BETTER else value < base
    label = "naive baseline" if kind == "majority" else f"{kind} baseline ({baseline_name(kind, evaluation.task)})"
    return Check("baseline", better, f"{name} {value:.4f} beats {label} {base:.4f}"
                 if better else f"{name} {value:.4f} does not beat {label} {base:.4f}")


def _bound(name: str, value: float | None, bound: float, *, at_least: bool) -> Check:
    if value is None:
        return Check(f"{'min' if at_least else 'max'}:{name}", False, f"{name} was not measured for this task")
    ok = value >= bound if at_least else value <= bound
    op = ">=" if at_least else "<="
    return Check(f"{'min' if at_least else 'max'}:{name}", ok, f"{name} {value:.4f} {op} {bound:g}"
                 if ok else f"{name} {value:.4f} not {op} {bound:g}")


def _champion_checks(evaluation: Evaluation, policy: GateSpec) -> list[Check]:
    champion = evaluation.champion
    if champion is None:
        ok = policy.on_no_champion == "promote"
        return [Check("champion", ok, "no champion yet; gate.on_no_champion=promote" if ok
                      else "no champion yet and gate.on_no_champion=reject")]
    if "error" in champion:
        return [Check("champion", False, f"champion v{champion['version']} could not be re-scored on the holdout: "
                      f"{champion['error']}")]
    tolerances = policy.vs_champion or {primary_metric(evaluation.task): 0.0}
    checks = []
    for name, tolerance in tolerances.items():
        ours, theirs = evaluation.metrics.get(name), champion["metrics"].get(name)
        if ours is None or theirs is None:
            checks.append(Check(f"vs_champion:{name}", False, f"{name} is not available for both models"))
            continue
        loss = (theirs - ours) if name in HIGHER_IS_BETTER else (ours - theirs)
        ok = loss <= tolerance
        checks.append(Check(f"vs_champion:{name}", ok, f"{name} {ours:.4f} vs champion v{champion['version']} "
                            f"{theirs:.4f} on the same holdout (loss {max(loss, 0):.4f}, tolerated {tolerance:g})"))
    return checks


def _window_checks(evaluation: Evaluation, policy: GateSpec) -> list[Check]:
    """The candidate must not lose to the champion on the window (fresh data) either, with the same tolerances."""
    window = evaluation.window
    if window is None or evaluation.champion is None:
        return []
    if "champion_error" in window:
        return [Check("window_vs_champion", False, f"champion could not be scored on the window {window['uri']}: "
                      f"{window['champion_error']}")]
    checks = []
    for name, tolerance in (policy.vs_champion or {primary_metric(evaluation.task): 0.0}).items():
        ours, theirs = window["metrics"].get(name), window.get("champion_metrics", {}).get(name)
        if ours is None or theirs is None:  # e.g. an AUC on a window whose labels are all one class: fail closed
            checks.append(Check(f"window_vs_champion:{name}", False, f"{name} could not be measured on the window "
                                f"({window['rows']} labelled rows; one class only?), so it cannot pass"))
            continue
        loss = (theirs - ours) if name in HIGHER_IS_BETTER else (ours - theirs)
        checks.append(Check(f"window_vs_champion:{name}", loss <= tolerance,
                            f"{name} {ours:.4f} vs champion v{evaluation.champion['version']} {theirs:.4f} on the "
                            f"window ({window['rows']} rows; loss {max(loss, 0):.4f}, tolerated {tolerance:g})"))
    return checks


def _slice_checks(evaluation: Evaluation, rules: SliceGateSpec) -> list[Check]:
    """`gate.slices` rules on every slice of at least `min_rows` rows; smaller ones are noted, not gated."""
    if not rules.rules:
        return []
    checks = []
    for record in evaluation.slices or []:
        where = f"slice {record['column']}={record['value']}"
        if record["rows"] < rules.min_rows:
            checks.append(Check(f"{where}:rows", True, f"{where}: {record['rows']} rows, under gate.slices.min_rows "
                                f"{rules.min_rows}: reported, not gated"))
            continue
        checks += [Check(f"{where}:{c.name}", c.passed, f"{where}: {c.message}")
                   for c in _slice_bounds(record, rules) + _slice_vs_champion(record, rules, evaluation.champion)]
    return checks


def _slice_bounds(record: dict[str, Any], rules: SliceGateSpec) -> list[Check]:
    checks = []
    for at_least, bounds in ((True, rules.min), (False, rules.max)):
        for name, bound in bounds.items():
            check = _bound(name, record["metrics"].get(name), bound, at_least=at_least)
            if name not in record["metrics"]:  # e.g. an AUC on a one-class slice: fail closed, and say why
                check = Check(check.name, False, f"{name} could not be measured on this slice (one class only?), "
                              "so it cannot pass")
            checks.append(check)
    return checks


def _slice_vs_champion(record: dict[str, Any], rules: SliceGateSpec, champion: dict[str, Any] | None) -> list[Check]:
    if champion is None or "champion_metrics" not in record:
        return []  # no champion, or one that could not be scored: the overall champion check says so
    checks = []
    for name, tolerance in rules.vs_champion.items():
        ours, theirs = record["metrics"].get(name), record["champion_metrics"].get(name)
        if ours is None or theirs is None:
            checks.append(Check(f"vs_champion:{name}", False, f"{name} is not available for both models on this "
                                "slice"))
            continue
        loss = (theirs - ours) if name in HIGHER_IS_BETTER else (ours - theirs)
        checks.append(Check(f"vs_champion:{name}", loss <= tolerance, f"{name} {ours:.4f} vs champion "
                            f"v{champion['version']} {theirs:.4f} ({record['rows']} rows; loss {max(loss, 0):.4f}, "
                            f"tolerated {tolerance:g})"))
    return checks


def execute(ctx: RunContext, evaluation: Evaluation, *, out_dir: Path) -> Blessing:
    """Decide the gate from the evaluation and the spec's policy; log the blessing and the decision's tags."""
    from driftloop.components.evaluation_report import write_report
    from driftloop.constants import BLESSING_FILE, EVALUATION_DIR, RUN_TAG_DEPLOYED, RUN_TAG_GATE

    blessing = decide(evaluation, ctx.spec.gate, onnx_tolerance=ctx.spec.train.onnx_tolerance)
    out_dir.mkdir(parents=True, exist_ok=True)
    blessing.save(out_dir / BLESSING_FILE)
    ctx.tracker.log_artifact(out_dir / BLESSING_FILE, EVALUATION_DIR)
    # The report shows the reasons, so it is drawn once they are known; the PNGs beside it for MLflow's previews.
    for path in write_report(out_dir, evaluation, blessing,
                             title=f"Evaluation of {ctx.spec.model_name}, run {ctx.run_id}"):
        ctx.tracker.log_artifact(path, EVALUATION_DIR)
    tags = {RUN_TAG_GATE: str(blessing.passed).lower()}
    if not blessing.passed:
        tags[RUN_TAG_DEPLOYED] = "false"
    ctx.tracker.set_tags(tags)
    return blessing
