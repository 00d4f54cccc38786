"""Key strings of the MLTrainingJob API and of the objects the operator owns."""

from driftloop.constants import CUDA_TAG_SUFFIX as CUDA_TAG_SUFFIX  # a resource with resources.gpu > 0 trains in it
from driftloop.constants import DEFAULT_IMAGE as DEFAULT_IMAGE  # the image of this driftloop version
from driftloop.constants import ENV_TERMINATION_GRACE_S as ENV_TERMINATION_GRACE_S  # tells the pod its grace period
from driftloop.constants import GPU_TOLERATION as GPU_TOLERATION
from driftloop.constants import K8S_GROUP, K8S_PLURAL, K8S_VERSION
from driftloop.constants import TERMINATION_GRACE_S as TERMINATION_GRACE_S  # SIGTERM → SIGKILL of a training pod

DEFAULT_CUDA_IMAGE = f"{DEFAULT_IMAGE}{CUDA_TAG_SUFFIX}"

# The resource's API, defined once in driftloop.constants (the k8s drift trigger needs it too).
GROUP = K8S_GROUP
VERSION = K8S_VERSION
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "MLTrainingJob"
PLURAL = K8S_PLURAL
SINGULAR = "mltrainingjob"
SHORT_NAMES = ("mltj",)
CRD_NAME = f"{PLURAL}.{GROUP}"

# On every owned object: which resource it belongs to, and for which generation.
LABEL_RESOURCE = f"{GROUP}/mltrainingjob"
LABEL_GENERATION = f"{GROUP}/generation"
# On every object the operator makes (training and drift-check Jobs included): its watches select on it.
MANAGED_BY = "driftloop-operator"
OWNED_SELECTOR = f"app.kubernetes.io/managed-by={MANAGED_BY}"
# On the resource: the state of its current Job, mirrored by the Job watcher so that a
# resource handler (with kopf's retries and persisted progress) acts on it.
ANNOTATION_JOB_STATE = f"{GROUP}/job-state"
# On a resource whose Job is in flight: the operator deletes the Job (whose pod ends its MLflow run) before
# the resource goes. The name is from when the operator ended the run itself; resources carry it, so it stays.
FINALIZER = f"{GROUP}/end-mlflow-run"
# Where kopf keeps handler progress (annotations survive restarts), and where operators before
# `status.lastHandledConfiguration` kept the last-handled spec (see `diffbase`).
KOPF_PREFIX = f"kopf.{GROUP}"
STATUS_LAST_HANDLED = "lastHandledConfiguration"
# Bounds status.lastHandledConfiguration: the spec (schema-bounded) and the resource's labels and
# annotations (at most 256 KiB) as JSON; well under what one object may hold in etcd (1.5 MiB).
LAST_HANDLED_MAX_CHARS = 1024 * 1024

# Run and model-version tags that make the pod's registration findable, hence exactly-once across retries.
TAG_NAMESPACE = "driftloop.k8s.namespace"
TAG_NAME = "driftloop.k8s.name"
TAG_UID = "driftloop.k8s.uid"
TAG_GENERATION = "driftloop.k8s.generation"

# Inside the training pod.
SPEC_MOUNT_DIR = "/etc/driftloop"
SPEC_FILE = "spec.yaml"
# On the Job's pod template: the run spec, which a downward-API volume shows the container as SPEC_FILE.
ANNOTATION_RUN_SPEC = f"{GROUP}/run-spec"
# What a pod's annotations (keys and values together) may hold: the API server refuses a Job past this.
POD_ANNOTATIONS_MAX_BYTES = 256 * 1024
TERMINATION_LOG = "/dev/termination-log"
TERMINATION_MESSAGE_BYTES = 3072  # the pod's outcome JSON is cut to this; the kubelet keeps 4096 bytes
WORK_DIR = "/tmp/driftloop"  # an emptyDir: the root filesystem is read-only
RENDEZVOUS_PORT = 29500
CONTAINER_NAME = "train"

# status.phase values and condition types.
PHASE_PENDING, PHASE_RUNNING, PHASE_SUCCEEDED, PHASE_FAILED = "Pending", "Running", "Succeeded", "Failed"
PHASE_SUSPENDED, PHASE_QUEUED = "Suspended", "Queued"  # spec.suspend; suspended by a queue (Kueue), not by us
TERMINAL_PHASES = (PHASE_SUCCEEDED, PHASE_FAILED)
COND_JOB_CREATED, COND_RUNNING, COND_SUCCEEDED, COND_FAILED = "JobCreated", "Running", "Succeeded", "Failed"
COND_GATE_PASSED, COND_PROMOTED = "GatePassed", "Promoted"
COND_SUSPENDED, COND_SUPERSEDED = "Suspended", "Superseded"

# Kueue's labels: copied from the resource to its Job, so Kueue queues and orders the Job.
KUEUE_LABELS = ("kueue.x-k8s.io/queue-name", "kueue.x-k8s.io/priority-class")
# Exit codes no retry can change, so the Job's podFailurePolicy fails the Job at once: `driftloop run`
# exits 2 for a usage or spec error (`UsageError`) and, told `--bad-input-exit 4`, 4 when a step failed
# on its data or spec (`DataError`, `ValidationFailed` …: `retryable = False`). Every other failure
# (MLflow or S3 unreachable, an internal error, an OOM kill's 137) exits otherwise and is retried.
EXIT_SPEC_ERROR = 2
EXIT_BAD_INPUT = 4

# Job states as the watcher mirrors them.
JOB_ACTIVE, JOB_SUCCEEDED, JOB_FAILED, JOB_SUSPENDED = "active", "succeeded", "failed", "suspended"
JOB_DELETED = "deleted"  # gone before it finished (`kubectl delete job`, a TTL)
