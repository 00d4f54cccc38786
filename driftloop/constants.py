"""Key strings shared by the steps, the registry and the runners."""

import os

from driftloop import __version__

# The project image: every KFP task, the MLTrainingJob's pods and `driftloop serve` run in it.
IMAGE_ENV = "DRIFTLOOP_IMAGE"
DEFAULT_IMAGE = f"ghcr.io/driftloop/driftloop:{__version__}"


def project_image() -> str:
    """`$DRIFTLOOP_IMAGE`, else the image built for this version of driftloop."""
    return os.environ.get(IMAGE_ENV) or DEFAULT_IMAGE


# The CUDA variant of the image (`make image VARIANT=cuda`): the same tag with this suffix. GPU training (an
# MLTrainingJob with `resources.gpu > 0`, a KFP train task with `train.device: cuda`) runs in it by default.
CUDA_TAG_SUFFIX = "-cuda"
# The taint GPU node pools carry (GKE, EKS, AKS and the NVIDIA GPU operator's convention).
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


CHAMPION_ALIAS = "champion"
PREVIOUS_ALIAS = "previous"

# Registered-model tag holding the JSON list of versions that were champion, oldest first.
CHAMPION_HISTORY_TAG = "driftloop.champion_history"
# The history keeps this many of the latest champions: a registered model tag is at most 5,000 characters in
# MLflow's SQL stores (Postgres and MySQL enforce it), which an unbounded list reaches in some 700 promotions.
CHAMPION_HISTORY_MAX = 200
# Version tags: the one a rollback took @champion from (never promoted again by a retry), and the champion a
# version was gated against (a retry promotes it only over that same champion).
TAG_ROLLED_BACK = "driftloop.rolled_back"
TAG_GATED_AGAINST = "driftloop.gated_against"
# Set on a version once @champion reached it: the history is written before the alias moves, so an entry there
# does not prove the version was ever champion (an attempt can die between the two writes).
TAG_PROMOTED = "driftloop.promoted"

# Model-version lineage tags.
TAG_RUN_ID = "driftloop.run_id"
TAG_DATA_URI = "driftloop.data_uri"
TAG_DATA_SHA256 = "driftloop.data_sha256"
TAG_SPEC_SHA256 = "driftloop.spec_sha256"
TAG_VERSION = "driftloop.version"
TAG_TASK = "driftloop.task"

# Run tags.
RUN_TAG_MODEL = "driftloop.model_name"
RUN_TAG_STATUS = "driftloop.status"
RUN_TAG_ERROR = "driftloop.error"
# the error line of a task attempt that KFP then retried: the run was reopened for the retry
RUN_TAG_RETRIED_ERROR = "driftloop.retried_error"
# a param value a retried task chose otherwise than its failed attempt logged (MLflow keeps a param's first value)
RUN_TAG_RETRY_PARAM_PREFIX = "driftloop.retry_param."
RUN_TAG_GATE = "driftloop.gate_passed"
RUN_TAG_DEPLOYED = "driftloop.deployed"
RUN_TAG_MODEL_VERSION = "driftloop.model_version"
RUN_TAG_SUITE_SOURCE = "driftloop.suite_source"
RUN_TAG_TASK = "driftloop.task"  # classification | regression, as resolved from data.task
RUN_TAG_TASK_REASON = "driftloop.task_reason"  # why: what the target looked like, or "set by data.task"

# Run params the steps add beside the spec's.
PARAM_DROPPED_MISSING_TARGET = "data.dropped_missing_target"  # rows dropped for a missing target
PARAM_POSITIVE_CLASS = "data.positive_class"  # binary tasks: the class precision/recall/F1/PR-AUC are about

# Artifact paths inside an MLflow run (and inside a local output directory).
MODEL_ARTIFACT_DIR = "model"
MODEL_FILE = "model.onnx"
SPEC_ARTIFACT = "driftloop/spec.yaml"
SUITE_ARTIFACT = "validation/expectations.json"
SUITE_CHANGES_ARTIFACT = "validation/suite_changes.json"
REFERENCE_ARTIFACT = "reference/reference.parquet"

# Local output layout of one pipeline run.
VALIDATION_DIR = "validation"
FEATURES_DIR = "features"
TRAIN_DIR = "train"
EVALUATION_DIR = "evaluation"
SUITE_FILE = "expectations.json"
VALIDATION_RESULT_FILE = "result.json"
VALIDATION_REPORT_FILE = "report.md"
SUITE_CHANGES_FILE = "suite_changes.json"
# run metrics of the validate step: counted findings that did not stop the run
METRIC_VALIDATION_WARNINGS = "validation.warnings"
TRANSFORM_FILE = "transform.joblib"
FEATURE_META_FILE = "features.json"
EVALUATION_FILE = "evaluation.json"
BLESSING_FILE = "blessing.json"
HOLDOUT_OUTPUTS_FILE = "holdout_outputs.npz"  # truth and every model's outputs on the holdout, for the report
SLICES_FILE = "slices.json"
SLICES_MARKDOWN_FILE = "slices.md"
EVALUATION_REPORT_FILE = "evaluation_report.html"

SPLITS = ("train", "val", "test")

# ONNX graph names and metadata keys.
ONNX_OUTPUT_PROBABILITIES = "probabilities"
ONNX_OUTPUT_PREDICTION = "prediction"
META_TASK = "driftloop.task"
META_CLASSES = "driftloop.classes"
META_TARGET = "driftloop.target"
META_NUMERIC = "driftloop.numeric_columns"
META_CATEGORICAL = "driftloop.categorical_columns"
META_VERSION = "driftloop.version"
META_POSITIVE_CLASS = "driftloop.positive_class"  # binary: JSON of the positive class, which is also classes[1]
META_DATETIME = "driftloop.datetime_columns"  # JSON {column: [calendar parts]}: raw date text in
# JSON {column: format ("YYYY-MM-DD", "DD/MM/YYYY", ...)}: the graph computes the calendar features from the text;
# absent in files from before it did, whose inputs are the features (computed in `feed_rows`)
META_DATE_FORMATS = "driftloop.date_formats"
META_BOOLEAN = "driftloop.boolean_columns"  # JSON [column]: categories whose spellings (yes, 1, true) read as True/False
META_IGNORED = "driftloop.ignored_columns"  # JSON [column]: training's columns left out (id, constant, drop); accepted, unused
META_INPUTS = "driftloop.inputs"  # JSON {column name: ONNX input name}; the names differ where a column's is unsafe
# JSON [text]: the cell texts training read as missing (`train.kept_missing_texts`: those of `data.read`, less any the
# table held as a category or date); absent: pandas' own
META_MISSING_TEXTS = "driftloop.missing_texts"

# Metric names, as MLflow users know them, with the direction that counts as better.
HIGHER_IS_BETTER = ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "r2")
LOWER_IS_BETTER = ("rmse", "mae", "latency_p50_ms", "latency_p99_ms", "log_loss")
METRICS = HIGHER_IS_BETTER + LOWER_IS_BETTER
# measured for the candidate alone, on the whole holdout: `gate.max` bounds them; nothing compares them
LATENCY_METRICS = ("latency_p50_ms", "latency_p99_ms")

DEFAULT_HOME = ".driftloop"

# Drift checks.
DRIFT_EXPERIMENT = "drift"
DRIFT_JSON_FILE = "drift.json"
DRIFT_HTML_FILE = "drift.html"
DRIFT_ARTIFACT_DIR = "drift"
FEATURE_META_ARTIFACT = "features/features.json"
RUN_TAG_DRIFT = "driftloop.drift"
RUN_TAG_DRIFTED_FEATURES = "driftloop.drifted_features"
RUN_TAG_CHAMPION_VERSION = "driftloop.champion_version"
RUN_TAG_DEDUPE_KEY = "driftloop.dedupe_key"
RUN_TAG_RETRAIN = "driftloop.retrain"
RUN_TAG_RETRAIN_OF = "driftloop.retrain_of"  # on a retrain run: the drift run that asked for it
TAG_LAST_DRIFT_RUN = "driftloop.last_drift_run"  # on the champion version: its latest drift check
TAG_LAST_DRIFT = "driftloop.last_drift"
# A retrain claim is an MLflow experiment named RETRAIN_CLAIM_PREFIX/<model>/<sequence>: the SQL store
# refuses a second experiment with the same name, so creating it is an atomic claim only one caller wins.
RETRAIN_CLAIM_PREFIX = "driftloop-retrain"
CLAIM_TAG_MODEL = "driftloop.claim.model"
CLAIM_TAG_SEQUENCE = "driftloop.claim.sequence"
CLAIM_TAG_STATE = "driftloop.claim.state"  # in_flight | submitted | completed | failed
CLAIM_TAG_STARTED = "driftloop.claim.started_at"
CLAIM_TAG_FINISHED = "driftloop.claim.finished_at"
CLAIM_TAG_TRIGGER = "driftloop.claim.trigger"
CLAIM_TAG_OUTCOME = "driftloop.claim.outcome"
# where a submitted retrain runs, so a later check can learn that it failed there (`<ns>/<name>@<generation>`)
CLAIM_TAG_REMOTE = "driftloop.claim.remote"
# "false" on a retrain that failed before training: it used nothing up, so it does not hold the cooldown
CLAIM_TAG_HOLDS_COOLDOWN = "driftloop.claim.holds_cooldown"
# Kubernetes: the MLTrainingJob resource and the field whose change starts a new training generation.
K8S_GROUP = "driftloop.io"
K8S_VERSION = "v1alpha1"
K8S_PLURAL = "mltrainingjobs"
RETRAIN_TOKEN_FIELD = "retrainToken"
# A training pod's SIGTERM → SIGKILL (its terminationGracePeriodSeconds). The pod is told it in this env
# var (render sets both from one value); `driftloop run` elsewhere assumes the default. A SIGTERM'd run
# gives MLflow the grace period less a margin to record KILLED: see `driftloop.runner.stop_budget_s`.
TERMINATION_GRACE_S = 20
ENV_TERMINATION_GRACE_S = "DRIFTLOOP_TERMINATION_GRACE_S"
RETRAIN_TOKEN_DRIFT_PREFIX = "drift-"  # a retrainToken the drift check set: that generation re-profiles its suite
ANNOTATION_RETRAIN_KEY = "driftloop.io/retrain-dedupe-key"
ANNOTATION_RETRAIN_AT = "driftloop.io/retrain-requested-at"

# `driftloop drift` exit codes that CI, alerting and the operator's drift CronJob act on
# (1 failure and 2 usage error are every command's).
EXIT_NO_DRIFT = 0
EXIT_DRIFT = 3

# Model families (train.model) and the user's code (train.module).
TRAIN_CHOSEN_MODEL_PARAM = "train.chosen_model"  # the family served: mlp, gbm, linear, or module
TRAIN_CODE_DIR = "code"  # the user's .py file, in the train output and as a run artifact

WHITESPACE_SEP = r"\s+"  # `data.read.sep` for runs of spaces or tabs (a column-aligned file): pandas' own spelling

# `driftloop predict` writes the scores beside the input columns under these names, so no input may carry them
PREDICTION_COLUMN = "prediction"
PROBABILITY_PREFIX = "probability_"
