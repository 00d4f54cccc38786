"""Drift: detection, the report, retrain claims, triggers and the `driftloop drift` command.

Layers, top to bottom (import-linter holds them): `cli` and `retrain` (claims + triggers, which
may start a runner) sit above the runners; `check` (resolve the reference, detect, write and
record the report), `detect`, `html`, `summary` and `claims` sit below them, so a KFP drift task
imports detection and the report only. Nothing is imported here: `import driftloop.drift` is free.
"""
