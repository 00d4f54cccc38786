"""Key strings shared by the steps, the registry and the runners."""

CHAMPION_ALIAS = "champion"
PREVIOUS_ALIAS = "previous"

# Registered-model tag holding the JSON list of versions that were champion, oldest first.
CHAMPION_HISTORY_TAG = "driftloop.champion_history"

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
RUN_TAG_GATE = "driftloop.gate_passed"
RUN_TAG_DEPLOYED = "driftloop.deployed"
RUN_TAG_MODEL_VERSION = "driftloop.model_version"

# Artifact paths inside an MLflow run (and inside a local output directory).
MODEL_ARTIFACT_DIR = "model"
MODEL_FILE = "model.onnx"
SPEC_ARTIFACT = "driftloop/spec.yaml"
SUITE_ARTIFACT = "validation/expectations.json"
REFERENCE_ARTIFACT = "reference/reference.parquet"

# Local output layout of one pipeline run.
VALIDATION_DIR = "validation"
FEATURES_DIR = "features"
TRAIN_DIR = "train"
EVALUATION_DIR = "evaluation"
SUITE_FILE = "expectations.json"
VALIDATION_RESULT_FILE = "result.json"
VALIDATION_REPORT_FILE = "report.md"
TRANSFORM_FILE = "transform.joblib"
FEATURE_META_FILE = "features.json"
EVALUATION_FILE = "evaluation.json"
BLESSING_FILE = "blessing.json"

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

# Metric names, as MLflow users know them, with the direction that counts as better.
HIGHER_IS_BETTER = ("accuracy", "precision", "recall", "f1", "roc_auc", "r2")
LOWER_IS_BETTER = ("rmse", "mae", "latency_p50_ms", "latency_p99_ms", "log_loss")
METRICS = HIGHER_IS_BETTER + LOWER_IS_BETTER

DEFAULT_HOME = ".driftloop"
