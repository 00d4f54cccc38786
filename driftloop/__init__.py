"""driftloop: one gated, drift-aware training pipeline for tabular models.

Importing this package is cheap on purpose: torch, mlflow, great_expectations and
onnx are imported inside the steps that need them, so `driftloop --help` is instant.
"""

__version__ = "0.1.0"
