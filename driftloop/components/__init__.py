"""The pipeline's steps: plain functions with file/URI inputs and outputs, no global state.

Each step module has its pure function and one executor, `execute(ctx, ...)`, that does
its MLflow logging; `steps.STEPS` lists them in order. The in-process runner (also what an
MLTrainingJob's pod runs) and the KFP components are adapters over those executors.
"""
