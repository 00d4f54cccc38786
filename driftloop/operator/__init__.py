"""The MLTrainingJob operator: `kopf run -m driftloop.operator.main` or `driftloop operator`.

Importing this package (or `render`, `resource`, `crd`, `outcome`) registers nothing and
loads neither kopf nor the kubernetes client; `driftloop.operator.main` is the module that
registers the kopf handlers.
"""
