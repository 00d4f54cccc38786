"""The pipeline's steps: plain functions with file/URI inputs and outputs, no global state.

Each step module has its pure function and one executor, `execute(ctx, ...)`, that does
its MLflow logging; `steps.STEPS` lists them in order. The in-process runner, the KFP
components and the operator's registration are adapters over those executors.
"""
