"""`driftloop serve`: the `@champion` ONNX model behind KServe V1 and MLflow scoring endpoints.

Imports here stay light: the CLI imports `driftloop.serve.command` for `--help`.
"""
