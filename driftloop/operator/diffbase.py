"""Where kopf keeps the last-handled spec (its "diff base"): in status, beside what the handlers write.

kopf tells a change from the spec and metadata it last handled, recorded after every handling
cycle. In an annotation, that record took a PATCH of the resource itself on top of the status
PATCH (with a status subresource kopf sends the two apart): two requests per cycle, a new
resource's included. In status it rides in the status PATCH the handlers' outcome goes in,
one request, and the record and the status it explains are written together or not at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import kopf

from driftloop.operator import constants as k


class StatusDiffBase(kopf.MultiDiffBaseStorage):
    """Written to `status.lastHandledConfiguration`; read from there, else from the annotation an
    operator before this one kept it in, so an upgrade sees no change and handles nothing anew."""

    def __init__(self) -> None:
        super().__init__([kopf.StatusDiffBaseStorage(field=f"status.{k.STATUS_LAST_HANDLED}"),
                          kopf.AnnotationsDiffBaseStorage(prefix=k.KOPF_PREFIX, key="last-handled-configuration")])

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        """The record, for an MLTrainingJob; none for the Jobs and CronJobs the operator only watches (see `build`)."""
        return super().fetch(body=body) if _tracked(body) else None

    def build(self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None) -> kopf.BodyEssence:
        """What the storages' chain builds, from one copy of what the essence keeps, not three of the body.

        kopf's multi-storage copies the whole body (status and all) and then each storage copies
        what is left again, on every event of every resource: a tenth of the operator's CPU in a burst.
        The annotation storage's build is the base one less its own key; status, where the other
        storage's record lives, is not part of it unless a handler's field asks for a piece of status.
        Neither is metadata beyond labels and annotations (managedFields, on a real cluster, is most of
        a body): the build deep-copies whatever it is given and then drops those, so it is given a view
        without them.

        Only MLTrainingJobs have handlers that act on a change. kopf builds (and diffs) the essence of
        every object it watches all the same, Jobs and CronJobs included, whose on-event handlers never
        read it: each new Job's pod template deep-copied twice and diffed, for nothing. Theirs is empty.
        """
        if not _tracked(body):
            return cast(kopf.BodyEssence, {})
        _, annotations = self.storages
        essence = annotations.build(body=_essential(body, [_field_keys(f) for f in extra_fields or ()]),
                                    extra_fields=extra_fields)
        kept = cast(dict[str, Any], essence).get("status")
        if kept:  # a piece of status a handler's field asked for: never the record itself
            kept.pop(k.STATUS_LAST_HANDLED, None)
            if not kept:
                del cast(dict[str, Any], essence)["status"]
        return essence

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        status, _ = self.storages  # the annotation is only read: writing it would cost the request saved
        status.store(body=body, patch=patch, essence=essence)


class ProgressAnnotations(kopf.AnnotationsProgressStorage):
    """kopf's progress annotations under our prefix, less one deep copy of the essence per side per event.

    kopf asks the progress storage to take its own annotations out of both essences it diffs, and the base
    `clear` deep-copies the essence first. Both are fresh already: the diff base's `fetch` parses them from JSON
    and its `build` copies them (`StatusDiffBase`), and kopf holds them nowhere else. That copy was a twentieth
    of the operator's CPU in a burst of new resources.
    """

    def clear(self, *, essence: kopf.BodyEssence) -> kopf.BodyEssence:
        annotations = cast(dict[str, Any], essence).get("metadata", {}).get("annotations", {})
        ours = {key for key in annotations if self.prefix and key.startswith(f"{self.prefix}/")}
        self.remove_annotations(essence, ours)
        self.remove_empty_stanzas(essence)
        return essence


def _tracked(body: kopf.Body) -> bool:
    """Not a Job or CronJob, which the operator only watches (on-event handlers): an MLTrainingJob, the
    kind with change-detecting handlers, or anything unrecognised (a body without its kind), to be safe."""
    return not (str(body.get("apiVersion", "")).startswith("batch/") and body.get("kind") in ("Job", "CronJob"))


# What kopf's base build reads of metadata: labels and annotations (kept), and for its keys the kind
# and owner references (a Deployment's ReplicaSets get their own key).
_META_READ = ("labels", "annotations", "ownerReferences")


def _essential(body: kopf.Body, fields: list[tuple[str, ...]]) -> kopf.Body:
    """The body less what the essence never keeps (but what a handler's field asks for), shallow: the build
    copies only what is left."""
    meta = body.get("metadata") or {}
    picked = {field[1] for field in fields if len(field) > 1 and field[0] == "metadata"}
    raw = {key: value for key, value in body.items() if key not in ("metadata", "status")}
    whole = ("metadata",) in fields
    raw["metadata"] = {key: value for key, value in meta.items() if whole or key in _META_READ or key in picked}
    if "status" in body and any(field[:1] == ("status",) for field in fields):
        raw["status"] = body["status"]
    return kopf.Body(raw)


def _field_keys(field: Any) -> tuple[str, ...]:
    """A handler's field as kopf takes it (a dotted string or a tuple of keys) as a tuple of keys."""
    return tuple(field.split(".")) if isinstance(field, str) else tuple(field)
