"""Idempotent, rate-limited retrains: one claim per retrain, made atomically in the MLflow store.

Registry tags are last-writer-wins, so they cannot arbitrate an alert storm. MLflow's SQL
store, however, refuses a second experiment with the same name. Each retrain of a model
is therefore claimed by creating the experiment `driftloop-retrain/<model>/<sequence>`
with the next sequence number: of any number of concurrent callers exactly one creates
it, the others get RESOURCE_ALREADY_EXISTS and stand down. Before trying, a caller reads
the existing claims and stands down on its own when

- a claim with the same dedupe key (champion version, drifted features, data window)
  exists and did not fail: that drift was already acted on;
- the latest claim is a retrain still in flight;
- the latest claim that holds the cooldown is younger than it. A retrain that failed
  before training (bad data, a validation error) trained nothing and holds none, so
  fixing the data and checking again retrains at once.

The claims stay as a durable audit trail (tags: key, state, trigger, outcome), so the
cooldown survives restarts and is shared by every machine that uses the same MLflow.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from driftloop.constants import (
    CLAIM_TAG_FINISHED,
    CLAIM_TAG_HOLDS_COOLDOWN,
    CLAIM_TAG_MODEL,
    CLAIM_TAG_OUTCOME,
    CLAIM_TAG_REMOTE,
    CLAIM_TAG_SEQUENCE,
    CLAIM_TAG_STARTED,
    CLAIM_TAG_STATE,
    CLAIM_TAG_TRIGGER,
    RETRAIN_CLAIM_PREFIX,
    RUN_TAG_DEDUPE_KEY,
)
from driftloop.durations import format_duration

if TYPE_CHECKING:
    from collections.abc import Callable

    from driftloop.mlflow_gateway import MLflowGateway

IN_FLIGHT = "in_flight"
SUBMITTED = "submitted"
COMPLETED = "completed"
FAILED = "failed"
# A local retrain still marked in flight after this long died without saying so; it no longer blocks.
IN_FLIGHT_TIMEOUT_S = 24 * 3600


def dedupe_key(model: str, champion_version: str | None, drifted_features: list[str], window: str) -> str:
    """Same champion, same drifted features, same data window → same key → one retrain."""
    canonical = json.dumps([model, champion_version, sorted(drifted_features), window])
    return hashlib.sha256(canonical.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class Claim:
    sequence: int
    experiment_id: str
    created_s: float  # server time the claim was made
    tags: dict[str, str]

    @property
    def key(self) -> str:
        return self.tags.get(RUN_TAG_DEDUPE_KEY, "")

    @property
    def state(self) -> str:
        return self.tags.get(CLAIM_TAG_STATE, IN_FLIGHT)

    @property
    def remote(self) -> str | None:
        """Where a submitted retrain runs (`<ns>/<name>@<generation>` for an MLTrainingJob), when known."""
        return self.tags.get(CLAIM_TAG_REMOTE) or None

    @property
    def holds_cooldown(self) -> bool:
        return self.tags.get(CLAIM_TAG_HOLDS_COOLDOWN) != "false"

    def summary(self) -> dict[str, Any]:
        return {"sequence": self.sequence, "experiment_id": self.experiment_id, "key": self.key, "state": self.state,
                "created_at": _iso(self.created_s), "trigger": self.tags.get(CLAIM_TAG_TRIGGER),
                "outcome": self.tags.get(CLAIM_TAG_OUTCOME), "holds_cooldown": self.holds_cooldown}


@dataclass(frozen=True)
class ClaimDecision:
    claimed: bool
    reason: str
    claim: Claim | None = None  # ours when claimed, else the one that stood in the way

    def to_json(self) -> dict[str, Any]:
        return {"claimed": self.claimed, "reason": self.reason, "claim": self.claim.summary() if self.claim else None}


class RetrainClaims:
    """The retrain claims of one registered model.

    Example:
        >>> decision = RetrainClaims(connect(uri), "customers").try_claim(key, cooldown_s=6 * 3600, trigger="local")
        >>> decision.claimed, decision.reason
        (False, 'cooldown: retrain #3 was claimed at 2026-11-23T10:00:00Z; next allowed after 16:00:00Z')
    """

    def __init__(self, mlflow: MLflowGateway, model_name: str, *, artifact_root: str | None = None) -> None:
        self.mlflow = mlflow
        self.model_name = model_name
        self.artifact_root = artifact_root

    def name(self, sequence: int) -> str:
        return f"{RETRAIN_CLAIM_PREFIX}/{self.model_name}/{sequence:06d}"

    def claims(self) -> list[Claim]:
        """Every claim of this model, oldest first."""
        found: list[Claim] = []
        # deleted claim experiments still hold their name, so they count as claims too
        for experiment in self.mlflow.search_experiments(f"name LIKE '{RETRAIN_CLAIM_PREFIX}/%'",
                                                         include_deleted=True):
            tags = experiment.tags
            # LIKE treats '_' as a wildcard, so the model is matched exactly on the tag
            if tags.get(CLAIM_TAG_MODEL) != self.model_name:
                continue
            created = (experiment.creation_time or 0) / 1000 or float(tags.get(CLAIM_TAG_STARTED, 0))
            found.append(Claim(int(tags.get(CLAIM_TAG_SEQUENCE, 0)), experiment.experiment_id, created, tags))
        return sorted(found, key=lambda c: c.sequence)

    def try_claim(self, key: str, *, cooldown_s: float, trigger: str, details: dict[str, str] | None = None,
                  now: float | None = None) -> ClaimDecision:
        """Claim the next retrain, or say which claim stands in the way and why."""
        now = time.time() if now is None else now
        claims = self.claims()
        blocked = self._blocked(claims, key, cooldown_s, now)
        if blocked is not None:
            return blocked
        sequence = (claims[-1].sequence if claims else 0) + 1
        tags = {CLAIM_TAG_MODEL: self.model_name, CLAIM_TAG_SEQUENCE: str(sequence), CLAIM_TAG_STATE: IN_FLIGHT,
                CLAIM_TAG_STARTED: f"{now:.3f}", CLAIM_TAG_TRIGGER: trigger, RUN_TAG_DEDUPE_KEY: key,
                **(details or {})}
        location = f"{self.artifact_root}/{RETRAIN_CLAIM_PREFIX}-{self.model_name}-{sequence:06d}" \
            if self.artifact_root else None
        experiment_id = self.mlflow.create_experiment(self.name(sequence), tags=tags, artifact_location=location)
        if experiment_id is None:
            return ClaimDecision(False, f"another drift check claimed retrain #{sequence} at the same moment")
        return ClaimDecision(True, f"claimed retrain #{sequence}", Claim(sequence, experiment_id, now, tags))

    def finish(self, claim: Claim, state: str, outcome: str, *, holds_cooldown: bool = True,
               remote: str | None = None) -> None:
        """Record how the claimed retrain ended (`submitted`, `completed` or `failed`).

        `holds_cooldown=False` (a failure before training) frees the cooldown as a failure frees the dedupe key.
        `remote` says where a submitted retrain runs, so a later check can learn of its end there.
        """
        tags = {CLAIM_TAG_STATE: state, CLAIM_TAG_OUTCOME: outcome[:4000], CLAIM_TAG_FINISHED: f"{time.time():.3f}",
                CLAIM_TAG_HOLDS_COOLDOWN: str(holds_cooldown).lower()}
        self.mlflow.set_experiment_tags(claim.experiment_id, tags | ({CLAIM_TAG_REMOTE: remote} if remote else {}))

    def fail_submitted(self, key: str, failed_where: Callable[[Claim], str | None]) -> list[Claim]:
        """Mark failed the submitted claims of `key` whose retrain `failed_where` finds failed where it ran, so
        that drift may be retrained again (after the cooldown: it may have trained); the claims so marked."""
        marked = []
        for claim in self.claims():
            if claim.state == SUBMITTED and claim.key == key and (reason := failed_where(claim)):
                self.finish(claim, FAILED, reason, remote=claim.remote)
                marked.append(claim)
        return marked

    @staticmethod
    def _blocked(claims: list[Claim], key: str, cooldown_s: float, now: float) -> ClaimDecision | None:
        for claim in claims:
            # a claim left in flight past the timeout died with its process (killed, OOM): like a failed one, it
            # acted on nothing, and must not hold its drift's key for ever
            dead = claim.state == IN_FLIGHT and now - claim.created_s >= IN_FLIGHT_TIMEOUT_S
            if claim.key == key and claim.state != FAILED and not dead:
                return ClaimDecision(False, f"duplicate: retrain #{claim.sequence} ({claim.state}) already acted on "
                                     f"this drift (dedupe key {key})", claim)
        if not claims:
            return None
        latest = claims[-1]
        if latest.state == IN_FLIGHT and now - latest.created_s < IN_FLIGHT_TIMEOUT_S:
            return ClaimDecision(False, f"in flight: retrain #{latest.sequence} started at {_iso(latest.created_s)} "
                                 "and has not finished", latest)
        holding = [c for c in claims if c.holds_cooldown]
        if holding and now - holding[-1].created_s < cooldown_s:
            last = holding[-1]
            return ClaimDecision(False, f"cooldown: retrain #{last.sequence} was claimed at "
                                 f"{_iso(last.created_s)}; next allowed after "
                                 f"{_iso(last.created_s + cooldown_s)} (cooldown {format_duration(cooldown_s)})",
                                 last)
        return None


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
