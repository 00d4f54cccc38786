"""Where kopf's record of the last-handled spec lives: status, read from an older operator's annotation too."""

from __future__ import annotations

import json

import kopf

from driftloop.operator.diffbase import StatusDiffBase

ANNOTATION = "kopf.driftloop.io/last-handled-configuration"
SPEC = {"modelType": "gbm"}


def body(*, annotations: dict[str, str] | None = None, status: dict[str, str] | None = None) -> kopf.Body:
    raw = {"apiVersion": "driftloop.io/v1alpha1", "kind": "MLTrainingJob",
           "metadata": {"name": "churn", "namespace": "ml", "annotations": annotations or {}},
           "spec": SPEC, "status": status or {}}
    return kopf.Body(raw)


def test_the_record_is_written_to_status_only_in_the_status_write() -> None:
    storage, patch = StatusDiffBase(), kopf.Patch()
    essence = storage.build(body=body())
    storage.store(body=body(), patch=patch, essence=essence)
    assert set(patch) == {"status"}  # nothing for a PATCH of the resource itself: one request, not two
    assert json.loads(patch["status"]["lastHandledConfiguration"]) == {"spec": SPEC}


def test_an_older_operators_annotation_is_read_so_an_upgrade_sees_no_change() -> None:
    storage = StatusDiffBase()
    old = json.dumps({"spec": SPEC}) + "\n"
    assert storage.fetch(body=body(annotations={ANNOTATION: old})) == {"spec": SPEC}
    newer = json.dumps({"spec": {"modelType": "linear"}})
    assert storage.fetch(body=body(annotations={ANNOTATION: old}, status={"lastHandledConfiguration": newer})) == {
        "spec": {"modelType": "linear"}}  # status first: the annotation is only ever stale after that
    # Neither record is part of what a change is told from.
    assert storage.build(body=body(annotations={ANNOTATION: old, "team": "risk"},
                                   status={"lastHandledConfiguration": newer})) == {
        "spec": SPEC, "metadata": {"annotations": {"team": "risk"}}}


def test_the_record_is_built_as_kopfs_storage_chain_builds_it() -> None:
    """One copy of the body instead of three: the same essence, so no change is seen where there was none."""
    chain = kopf.MultiDiffBaseStorage(StatusDiffBase().storages)
    raw = body(annotations={ANNOTATION: "{}", "team": "risk", "kopf.driftloop.io/start_training": "{}"},
               status={"lastHandledConfiguration": "{}", "phase": "Running"})
    for extra in (None, ["status.phase"], ["status.lastHandledConfiguration"]):
        assert StatusDiffBase().build(body=raw, extra_fields=extra) == chain.build(body=raw, extra_fields=extra)
    # What the build is not given (metadata beyond labels and annotations) is what the chain drops.
    full = kopf.Body({**raw, "metadata": {**raw["metadata"], "uid": "u1", "generation": 3, "finalizers": ["x/y"],
                                          "labels": {"team": "risk"}, "managedFields": [{"manager": "kubectl"}],
                                          "ownerReferences": [{"kind": "Deployment", "name": "d", "uid": "u0"}]}})
    for extra in (None, [("metadata", "annotations", "team")], ["metadata.uid"], [("status", "phase")], ["metadata"]):
        assert StatusDiffBase().build(body=full, extra_fields=extra) == chain.build(body=full, extra_fields=extra)


def test_what_is_only_watched_has_no_record() -> None:
    """A Job's (on-event handlers only): nothing built, nothing read, so kopf copies and diffs no pod template."""
    job = kopf.Body({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "churn-g1", "annotations": {
        ANNOTATION: json.dumps({"spec": {"parallelism": 1}})}}, "spec": {"template": {"spec": {"containers": []}}}})
    assert StatusDiffBase().build(body=job) == {}
    assert StatusDiffBase().fetch(body=job) is None


def test_progress_is_cleared_from_both_sides_as_kopf_clears_it_without_touching_the_body() -> None:
    """The same essence kopf's own `clear` gives, from the diff base's fresh copies, and the body left as it was."""
    from driftloop.operator.diffbase import ProgressAnnotations

    ours, kopfs, storage = ProgressAnnotations(prefix="kopf.driftloop.io"), \
        kopf.AnnotationsProgressStorage(prefix="kopf.driftloop.io"), StatusDiffBase()
    raw = body(annotations={"kopf.driftloop.io/start_training": '{"started": "x"}', "team": "risk"},
               status={"lastHandledConfiguration": json.dumps(
                   {"spec": SPEC, "metadata": {"annotations": {"kopf.driftloop.io/follow_job": "{}"}}})})
    before = json.dumps(dict(raw), sort_keys=True)
    for side in (storage.build(body=raw), storage.fetch(body=raw)):
        assert ours.clear(essence=json.loads(json.dumps(side))) == kopfs.clear(essence=side)
    assert ours.clear(essence=storage.build(body=raw)) == {"spec": SPEC, "metadata": {"annotations": {"team": "risk"}}}
    assert ours.clear(essence=storage.fetch(body=raw)) == {"spec": SPEC}  # an empty stanza goes too
    assert json.dumps(dict(raw), sort_keys=True) == before
