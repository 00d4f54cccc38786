"""Errors a user can cause. The CLI prints their message as one line; nothing else does."""


class DriftloopError(Exception):
    """Base class: the message is the single line a user sees."""

    exit_code = 1
    # Whether running the same thing again might succeed (a server back, a file uploaded). False for
    # bad input: a Job's podFailurePolicy fails at once on it instead of spending its retries.
    retryable = True


class UsageError(DriftloopError):
    """A command line that cannot be acted on."""

    exit_code = 2
    retryable = False


class InvalidSpec(UsageError):
    """A spec file or override with an unknown key or a wrong value."""


class DataError(DriftloopError):
    """The input table cannot be used: missing, empty, wrong columns or types."""

    retryable = False


class ValidationFailed(DataError):
    """The table broke one or more expectations of the suite."""


class TrainingError(DriftloopError):
    """Training or the ONNX export/parity check failed."""


class RegistryUnavailable(DriftloopError):
    """The MLflow tracking server / registry could not be reached."""


class ModelNotFound(DriftloopError):
    """A registered model, version or alias that does not exist."""


class StorageError(DriftloopError):
    """A local path or s3:// object that cannot be read or written."""


class PipelineServiceError(DriftloopError):
    """The Kubeflow Pipelines endpoint is unreachable, refused the credentials or rejected a request."""


class ArtifactNotFound(DriftloopError):
    """An MLflow run has no artifact at the path asked for."""


class UserCodeError(TrainingError):
    """The user's `train.module` cannot be loaded, called, trained or converted."""


class ChampionMoved(DriftloopError):
    """`@champion` is not the version the gate compared against: another run promoted meanwhile."""

    retryable = False  # the same gate result would be refused again: a new run compares with the new champion
