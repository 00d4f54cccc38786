"""The pipeline's steps: plain functions with file/URI inputs and outputs, no global state.

The in-process runner, the KFP components and the Job entrypoint are adapters over them.
"""
