"""The MLTrainingJob operator: `kopf run -m driftloop.operator` or `driftloop operator`.

Importing this package registers the kopf handlers; rendering (`render`), the resource
model (`resource`, `crd`) and registration (`registration`) import without kopf side effects.
"""

from driftloop.operator import drift_policy as drift_policy  # noqa: F401  (the drift policy; imports handlers first)
from driftloop.operator import handlers as handlers  # noqa: F401  (registers the handlers with kopf)
