"""Where kopf keeps the last-handled spec (its "diff base"): in status, beside what the handlers write.

kopf tells a change from the spec and metadata it last handled, recorded after every handling
cycle. In an annotation, that record took a PATCH of the resource itself on top of the status
PATCH (with a status subresource kopf sends the two apart): two requests per cycle, a new
resource's included. In status it rides in the status PATCH the handlers' outcome goes in,
one request, and the record and the status it explains are written together or not at all.
"""

from __future__ import annotations

import kopf

from driftloop.operator import constants as k


class StatusDiffBase(kopf.MultiDiffBaseStorage):
    """Written to `status.lastHandledConfiguration`; read from there, else from the annotation an
    operator before this one kept it in, so an upgrade sees no change and handles nothing anew."""

    def __init__(self) -> None:
        super().__init__([kopf.StatusDiffBaseStorage(field=f"status.{k.STATUS_LAST_HANDLED}"),
                          kopf.AnnotationsDiffBaseStorage(prefix=k.KOPF_PREFIX, key="last-handled-configuration")])

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        status, _ = self.storages  # the annotation is only read: writing it would cost the request saved
        status.store(body=body, patch=patch, essence=essence)
