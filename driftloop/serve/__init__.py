"""`driftloop serve`: the `@champion` ONNX model behind MLflow scoring, KServe V1 and Open Inference Protocol (V2) endpoints.

Imports here stay light: the CLI imports `driftloop.serve.command` for `--help`.
"""
