"""A Kubernetes for tests: kmock's emulator plus what the API server and the Job controller do.

kmock's `KubernetesEmulator` stores objects and streams watch events. A cluster does
more, and the operator relies on it, so this subclass adds (as kmock's docs suggest):

- API server: `uid`, `generation`, `creationTimestamp`, `resourceVersion`; `generation`
  bumped on spec changes only; the status subresource (status writes only through
  `/status`, never through the main resource); schema validation of custom resources
  against the CRD's openAPIV3Schema, with unknown fields rejected as `kubectl`'s strict
  field validation does, and its `x-kubernetes-validations` CEL rules (tests/operator/cel.py,
  the Rust CEL engine) on create and update, transition rules against the old object; owner-reference garbage collection on delete.
- Job controller + kubelet: each Job's pods run their container command as local
  processes with the container's env (values, `fieldRef`, `envFrom` secrets), its
  ConfigMap/downward-API/emptyDir volumes materialised in a temporary directory, `$(VAR)` expansion,
  retries up to `backoffLimit`, `activeDeadlineSeconds`, and the pod's termination
  message read back from `terminationMessagePath`. `*.svc` names resolve to loopback.
  A Job deleted with a propagation policy (Background, Foreground) stops its pods as a kubelet
  does: SIGTERM, then SIGKILL to every process of the "container" once the pod's
  `terminationGracePeriodSeconds` (default 30) is up; one deleted without (the API's default for
  Jobs is to orphan them) leaves its pods running. `terminations` records how each pod ended.

`LocalCluster` serves it on 127.0.0.1 from a background thread and writes a kubeconfig,
so `kubectl`, the `kubernetes` client and the operator (a real subprocess) all use HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import os
import re
import secrets
import signal
import socket
import sys
import threading
import time
import uuid
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import jsonpatch
import kmock
import yaml
from kmock import KubernetesError, ResourceInfo, action
from kmock._internal import parsing as kmock_parsing

from .cel import Rule, compile_rules, violations

VERBS = {"create", "delete", "get", "list", "patch", "update", "watch"}
JOBS = kmock.resource("batch", "v1", "jobs")
CRONJOBS = kmock.resource("batch", "v1", "cronjobs")
PODS = kmock.resource("", "v1", "pods")
CONFIGMAPS = kmock.resource("", "v1", "configmaps")
SECRETS = kmock.resource("", "v1", "secrets")
CRDS = kmock.resource("apiextensions.k8s.io", "v1", "customresourcedefinitions")
LEASES = kmock.resource("coordination.k8s.io", "v1", "leases")
SERVICEACCOUNTS = kmock.resource("", "v1", "serviceaccounts")
ROLEBINDINGS = kmock.resource("rbac.authorization.k8s.io", "v1", "rolebindings")
BUILTINS: dict[Any, ResourceInfo] = {
    kmock.resource("", "v1", "namespaces"): ResourceInfo(kind="Namespace", namespaced=False, verbs=VERBS),
    CONFIGMAPS: ResourceInfo(kind="ConfigMap", namespaced=True, verbs=VERBS, shortnames={"cm"}),
    SECRETS: ResourceInfo(kind="Secret", namespaced=True, verbs=VERBS),
    kmock.resource("", "v1", "services"): ResourceInfo(kind="Service", namespaced=True, verbs=VERBS),
    PODS: ResourceInfo(kind="Pod", namespaced=True, verbs=VERBS, subresources={"status"}),
    kmock.resource("", "v1", "events"): ResourceInfo(kind="Event", namespaced=True, verbs=VERBS),
    JOBS: ResourceInfo(kind="Job", namespaced=True, verbs=VERBS, subresources={"status"}),
    # Stored only: no CronJob controller runs here; `LocalCluster.fire_cronjob` starts one by hand.
    CRONJOBS: ResourceInfo(kind="CronJob", namespaced=True, verbs=VERBS, shortnames={"cj"}, subresources={"status"}),
    CRDS: ResourceInfo(kind="CustomResourceDefinition", namespaced=False, verbs=VERBS),
    LEASES: ResourceInfo(kind="Lease", namespaced=True, verbs=VERBS),  # the operator's leader election
    SERVICEACCOUNTS: ResourceInfo(kind="ServiceAccount", namespaced=True, verbs=VERBS, shortnames={"sa"}),
    ROLEBINDINGS: ResourceInfo(kind="RoleBinding", namespaced=True, verbs=VERBS),
    # Stored only, so `kubectl apply -k manifests/overlays/dev` finds every kind the install has
    # (nothing here runs a Deployment or enforces RBAC or a NetworkPolicy).
    kmock.resource("rbac.authorization.k8s.io", "v1", "roles"): ResourceInfo(kind="Role", namespaced=True, verbs=VERBS),
    kmock.resource("rbac.authorization.k8s.io", "v1", "clusterroles"): ResourceInfo(
        kind="ClusterRole", namespaced=False, verbs=VERBS),
    kmock.resource("rbac.authorization.k8s.io", "v1", "clusterrolebindings"): ResourceInfo(
        kind="ClusterRoleBinding", namespaced=False, verbs=VERBS),
    kmock.resource("apps", "v1", "deployments"): ResourceInfo(
        kind="Deployment", namespaced=True, verbs=VERBS, shortnames={"deploy"}, subresources={"status"}),
    kmock.resource("networking.k8s.io", "v1", "networkpolicies"): ResourceInfo(
        kind="NetworkPolicy", namespaced=True, verbs=VERBS, shortnames={"netpol"}),
    kmock.resource("", "v1", "persistentvolumeclaims"): ResourceInfo(
        kind="PersistentVolumeClaim", namespaced=True, verbs=VERBS, shortnames={"pvc"}),
}


def _parse_path(path: str) -> Any:
    """kmock's path parser, able to read `/api/v1/namespaces[/NAME]`, which it fails on (ValueError).

    kopf lists and watches namespaces when it serves some rather than all (`--namespace`); the
    parser reads the `namespaces` segment as the start of a namespaced path with nothing after it.
    """
    parts = path.strip("/").split("/")
    if parts[:3] == ["api", "v1", "namespaces"] and len(parts) <= 4:
        return kmock_parsing.ParsedPath("", "v1", "namespaces", None, parts[3] if len(parts) == 4 else None, None)
    return _kmock_parse_path(path)


_kmock_parse_path = kmock_parsing.parse_path
kmock_parsing.parse_path = _parse_path  # a third-party parser's gap, filled for every emulator in this process


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _expected_version(data: Any) -> str | None:
    """The resourceVersion an update is made at (a precondition): in a merge patch's metadata, or set by a JSON patch."""
    if isinstance(data, dict):
        return (data.get("metadata") or {}).get("resourceVersion") or None
    if isinstance(data, list):
        return next((op.get("value") for op in data if isinstance(op, dict) and op.get("op") in ("add", "replace")
                     and op.get("path") == "/metadata/resourceVersion"), None)
    return None


def merged(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """JSON merge patch (RFC 7386): dicts merge, None deletes, anything else replaces."""
    out = dict(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict):
            out[key] = merged(out[key] if isinstance(out.get(key), dict) else {}, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _strict(schema: dict[str, Any]) -> dict[str, Any]:
    """The CRD schema with unknown fields rejected, as `kubectl --validate=strict` reports them."""
    node = {key: value for key, value in schema.items() if not key.startswith("x-kubernetes-")}
    if "properties" in node:
        node["properties"] = {name: _strict(child) for name, child in node["properties"].items()}
        node.setdefault("additionalProperties", False)
    if isinstance(node.get("additionalProperties"), dict):
        node["additionalProperties"] = _strict(node["additionalProperties"])
    if isinstance(node.get("items"), dict):
        node["items"] = _strict(node["items"])
    return node


@attrs.define
class Fault:
    """Answer the next `times` matching requests with an error `status` and/or after `delay` seconds.

    `after=True` carries the request out first and then answers with the error: a lost
    response, so the client's retry meets what its first attempt already did (409 on a create).
    """

    action: Any
    plural: str
    status: int | None = None
    delay: float = 0.0
    times: int = 1
    subresource: str | None = None
    after: bool = False
    when: Any = None  # an extra predicate on the request, e.g. on its body
    seen: int = 0

    def error(self, request: Any) -> KubernetesError:
        return KubernetesError(status=self.status, reason="InjectedFault",
                               message=f"injected {self.status} for {request.action.value} {self.plural}")

    def matches(self, request: Any) -> bool:
        return (self.times > 0 and request.action == self.action and request.resource is not None
                and request.resource.plural == self.plural and request.subresource == self.subresource
                and (self.when is None or bool(self.when(request))))


@attrs.define(kw_only=True)
class Cluster(kmock.KubernetesEmulator):
    """The emulator with API-server semantics and a Job runner (see the module docstring)."""

    workdir: Path
    pod_env: dict[str, str] = attrs.field(factory=dict)  # what every "node" adds (e.g. nothing secret)
    # What a pod that mounts a service account token talks to the API server with.
    kubeconfig: Path | None = attrs.field(default=None)
    _validators: dict[Any, Any] = attrs.field(factory=dict, init=False)
    _cel: dict[Any, list[Rule]] = attrs.field(factory=dict, init=False)  # each CRD's x-kubernetes-validations
    _kinds: dict[Any, str] = attrs.field(factory=dict, init=False)
    _with_status: set[Any] = attrs.field(factory=set, init=False)
    _versions: Any = attrs.field(factory=lambda: itertools.count(1), init=False)
    _tasks: set[asyncio.Task[Any]] = attrs.field(factory=set, init=False)
    watches: dict[str, int] = attrs.field(factory=dict, init=False)
    watch_selectors: list[tuple[str, str | None]] = attrs.field(factory=list, init=False)  # (plural, labelSelector)
    watch_namespaces: list[tuple[str, str | None]] = attrs.field(factory=list, init=False)  # (plural, None: all)
    faults: list[Fault] = attrs.field(factory=list, init=False)
    created_at: dict[tuple[str, str | None, str], float] = attrs.field(factory=dict, init=False)  # monotonic
    _inflight: list[Any] = attrs.field(factory=list, init=False)
    jobs_started: int = attrs.field(default=0, init=False)
    served: dict[str, int] = attrs.field(factory=dict, init=False)  # "create jobs" → count (the benchmark reads it)
    job_gate: asyncio.Event | None = attrs.field(default=None, init=False)
    # Kueue's admission webhook: a Job with a queue-name label is created suspended, for the queue to admit.
    kueue: bool = attrs.field(default=False, init=False)
    _processes: dict[tuple[str, str], dict[str, Any]] = attrs.field(factory=dict, init=False)  # (ns, job) → pod → process
    # How each pod stopped when its Job was deleted: (namespace, pod) → exit code, seconds after SIGTERM, SIGKILLed.
    terminations: dict[tuple[str, str], Termination] = attrs.field(factory=dict, init=False)
    _compare_and_swap: asyncio.Lock = attrs.field(factory=asyncio.Lock, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        for resource, info in BUILTINS.items():
            self.resources[resource] = info
            if "status" in info.subresources:
                self._with_status.add(resource)
            self._kinds[resource] = info.kind

    def install_crd(self, crd: dict[str, Any]) -> None:
        """Serve a CustomResourceDefinition: discovery, status subresource, schema validation."""
        from jsonschema import Draft4Validator

        spec = crd["spec"]
        for version in spec["versions"]:
            resource = kmock.resource(spec["group"], version["name"], spec["names"]["plural"])
            self.resources[resource] = ResourceInfo(
                kind=spec["names"]["kind"], singular=spec["names"]["singular"], namespaced=spec["scope"] == "Namespaced",
                shortnames=set(spec["names"].get("shortNames", [])), categories=set(spec["names"].get("categories", [])),
                verbs=VERBS, subresources=set(version.get("subresources", {})))
            if "status" in version.get("subresources", {}):
                self._with_status.add(resource)
            self._kinds[resource] = f"{spec['names']['kind']}.{spec['group']}"
            self._validators[resource] = Draft4Validator(_strict(version["schema"]["openAPIV3Schema"]))
            self._cel[resource] = compile_rules(version["schema"]["openAPIV3Schema"])
        self.objects[CRDS, None, crd["metadata"]["name"]] = crd

    # -- the API server --------------------------------------------------------------------

    def __iter__(self) -> Any:
        # kmock finds each request among "all requests seen" before answering it, so a growing log
        # makes every answer slower (quadratic under load). Only requests in flight can be answered.
        yield from list(self._inflight)

    def _KubernetesEmulator__get_objs(self, request: Any, strict: bool) -> list[Any]:  # noqa: N802 (kmock's name)
        # kmock scans every stored object to answer a request for one named object: quadratic under
        # load, a cost no API server has. A keyed lookup answers the same; anything else still scans.
        if strict and request.name is not None:
            key = (request.resource, request.namespace, request.name)
            if key in self.objects:
                return [self.objects[key]]
        return kmock.KubernetesEmulator._KubernetesEmulator__get_objs(self, request, strict)

    async def __call__(self, raw_request: Any) -> Any:
        if raw_request.query.get("watch") in ("true", "1"):
            # A watch streams JSON lines; kmock leaves aiohttp's default type, which kubectl refuses.
            async def json_stream(response: Any) -> None:
                response.headers["Content-Type"] = "application/json"

            object.__setattr__(raw_request, "_prepare_hook", json_stream)
        return await super().__call__(raw_request)

    async def _serve_version(self, request: Any) -> Any:
        # kmock names the core group's version "/v1"; kubectl maps no kind of a group version it
        # cannot parse, so every ConfigMap, Secret and Namespace of an apply was "not found".
        served = await super()._serve_version(request)
        if isinstance(served, dict) and str(served.get("groupVersion", "")).startswith("/"):
            served["groupVersion"] = served["groupVersion"][1:]
        return served

    async def _serve_list(self, request: Any) -> Any:
        # As an API server answers: a typed list (`<Kind>List`, which kubectl's informers need) and
        # `fieldSelector=metadata.name=…` applied (`kubectl wait` watches one object by it).
        listed = await super()._serve_list(request)
        kind = self.resources[request.resource].kind
        version = f"{request.resource.group}/{request.resource.version}" if request.resource.group \
            else request.resource.version
        items = [o for o in listed["items"] if _selected(request, o)]
        return listed | {"kind": f"{kind}List", "apiVersion": version, "items": items}

    async def _serve_watch(self, request: Any) -> Any:
        replay = self._missed_deletion(request)
        async for event in super()._serve_watch(request):
            if not isinstance(event, dict) or _selected(request, event.get("object") or {}):
                yield event
            for missed in replay:  # after the stream's start, before anything new
                yield missed
            replay = []

    def _missed_deletion(self, request: Any) -> list[dict[str, Any]]:
        """A watch from a resourceVersion replays what happened since, as an API server does; kmock does not.

        What matters here is one case: `kubectl delete` (and `kubectl wait --for=delete`) lists one object by
        name, then watches it from the list's version. An object a finalizer held may go in between, and
        without the replay of its DELETED event the watch waits forever.
        """
        name = next((term.partition("=")[2].lstrip("=") for term in (request.params or {}).get("fieldSelector", "")
                     .split(",") if term.startswith("metadata.name=")), None)
        if not name or not (request.params or {}).get("resourceVersion"):
            return []
        key = (request.resource, request.namespace, name)
        if key in self.objects and self.objects[key].deleted:
            return [{"type": "DELETED", "object": self.objects[key].last.raw}]
        return []

    async def _handle(self, request: Any) -> Any:
        self._requests.clear()  # nothing here reads the request log; keep memory flat
        self._inflight.append(request)
        if request.resource is not None:
            verb = f"{request.action.value} {request.resource.plural}" + (f"/{request.subresource}"
                                                                          if request.subresource else "")
            self.served[verb] = self.served.get(verb, 0) + 1
        try:
            return await self._answer(request)
        finally:
            self._inflight.remove(request)

    async def _answer(self, request: Any) -> Any:
        fault = next((f for f in self.faults if f.matches(request)), None)
        if fault is not None:
            fault.times, fault.seen = fault.times - 1, fault.seen + 1
            await asyncio.sleep(fault.delay)
            if fault.status is not None and not fault.after:
                raise fault.error(request)
        response = await self._serve(request)
        if fault is not None and fault.status is not None and fault.after:
            raise fault.error(request)
        return response

    async def _serve(self, request: Any) -> Any:
        if request.action == action.UPDATE and _expected_version(request.data):
            async with self._compare_and_swap:  # the version check and the write, with no other such write between
                return await self._serve_unlocked(request)
        return await self._serve_unlocked(request)

    async def _serve_unlocked(self, request: Any) -> Any:
        if request.resource is not None:
            if request.action == action.WATCH:
                self.watches[request.resource.plural] = self.watches.get(request.resource.plural, 0) + 1
                self.watch_selectors.append((request.resource.plural, (request.params or {}).get("labelSelector")))
                self.watch_namespaces.append((request.resource.plural, request.namespace))
            # In place: kmock serves only the request objects it recorded, and they are frozen.
            if request.action == action.CREATE:
                object.__setattr__(request, "data", self._admit_create(request))
            elif request.action == action.UPDATE and request.name is not None:
                object.__setattr__(request, "data", self._admit_update(request))
        owner_uid, key = None, None
        if request.resource is not None and request.action in (action.DELETE, action.UPDATE) and request.name:
            # A delete, or the update that removes an object's last finalizer, can end it.
            key = (request.resource, request.namespace, request.name)
            if key in self.objects and not self.objects[key].deleted:
                owner_uid = self.objects[key].get("metadata", {}).get("uid")
            if request.resource == JOBS and request.action == action.DELETE and _propagates(request):
                self._stop_pods(request.namespace, request.name)  # its pods go with the Job
        try:
            response = await super()._handle(request)
        except jsonpatch.JsonPatchTestFailed as e:
            # A JSON patch whose `test` op fails (kopf tests metadata.resourceVersion before removing a
            # finalizer) is a 422 from an API server, which kopf takes as "newer changes: next cycle";
            # kmock lets it out as a 500, which kopf retries with backoff for about a minute.
            raise KubernetesError(status=422, reason="Invalid", message=f"the server rejected our request: {e}") from None
        if owner_uid is not None and (key not in self.objects or self.objects[key].deleted):
            # Only once the owner is gone: one held by a finalizer keeps what it owns, as on a cluster.
            await self._collect_garbage(owner_uid)
        if request.action == action.CREATE and response.status < 300:
            meta = request.data["metadata"]
            self.created_at[request.resource.plural, meta.get("namespace"), meta["name"]] = time.monotonic()
        if request.resource == JOBS and request.action == action.CREATE and response.status < 300:
            meta = request.data["metadata"]
            self._spawn(self._run_job(meta.get("namespace") or request.namespace, meta["name"]))
        return response

    def _admit_create(self, request: Any) -> dict[str, Any]:
        obj = copy.deepcopy(request.data)
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + secrets.token_hex(3)
        if request.namespace and not meta.get("namespace"):
            meta["namespace"] = request.namespace
        meta |= {"uid": str(uuid.uuid4()), "creationTimestamp": _now(), "generation": 1,
                 "resourceVersion": str(next(self._versions))}
        if request.resource in self._with_status and request.resource in self._validators:
            obj.pop("status", None)  # a create cannot set status when it is a subresource
        if request.resource == JOBS and self.kueue and "kueue.x-k8s.io/queue-name" in (meta.get("labels") or {}):
            obj.setdefault("spec", {})["suspend"] = True
        self._validate(request.resource, obj)
        return obj

    def _admit_update(self, request: Any) -> dict[str, Any]:
        key = (request.resource, request.namespace, request.name)
        if key not in self.objects or self.objects[key].deleted:
            return request.data  # the emulator answers 404 itself
        current = self.objects[key].raw
        expected = _expected_version(request.data)
        if expected and expected != current.get("metadata", {}).get("resourceVersion"):
            # Optimistic concurrency: a write at a version that is no longer current loses (leader election relies on
            # it), whatever the patch's form: the API server compares the patched object's resourceVersion.
            raise KubernetesError(status=409, reason="Conflict",
                                  message=f'Operation cannot be fulfilled on {request.resource.plural} "{request.name}": '
                                          "the object has been modified; please apply your changes to the latest "
                                          "version and try again")
        if isinstance(request.data, list):  # a JSON patch, which kmock applies: it writes a new version, as any write
            kept = [op for op in request.data if not (op.get("path") == "/metadata/resourceVersion"
                                                      and op.get("op") in ("add", "replace"))]
            return [*kept, {"op": "add", "path": "/metadata/resourceVersion", "value": str(next(self._versions))}]
        if not isinstance(request.data, dict):
            return request.data  # the unsupported patch form: the emulator answers it itself
        change = copy.deepcopy(request.data)
        if request.resource in self._with_status:
            # The status subresource: `/status` writes status only, the main resource never does.
            change = {"status": change.get("status")} if request.subresource == "status" else \
                {k: v for k, v in change.items() if k != "status"}
            if request.subresource == "status" and change["status"] is None:
                change = {}
        for fixed in ("uid", "creationTimestamp", "generation", "name", "namespace"):
            change.get("metadata", {}).pop(fixed, None)
        after = merged(current, change)
        meta = change.setdefault("metadata", {})
        if after.get("spec") != current.get("spec"):
            meta["generation"] = int(current.get("metadata", {}).get("generation") or 1) + 1
        meta["resourceVersion"] = str(next(self._versions))
        self._validate(request.resource, merged(current, change), current)
        return change

    def _validate(self, resource: Any, obj: dict[str, Any], old: dict[str, Any] | None = None) -> None:
        validator = self._validators.get(resource)
        if validator is None:
            return
        errors = sorted(validator.iter_errors(obj), key=lambda e: (len(e.absolute_path), list(map(str, e.path))))
        name = obj.get("metadata", {}).get("name")
        if not errors:
            # As the API server: the CEL rules run on what passed the schema (status writes included).
            rejected = violations(self._cel.get(resource, []), obj, old)
            if rejected:
                detail = rejected[0] if len(rejected) == 1 else f"[{', '.join(rejected)}]"
                raise KubernetesError(status=422, reason="Invalid",
                                      message=f'{self._kinds[resource]} "{name}" is invalid: {detail}')
            return
        error = errors[0]
        where = ".".join(str(p) for p in error.absolute_path)
        if error.validator == "additionalProperties":
            unknown = re.findall(r"'([^']+)' was unexpected", error.message) or ["?"]
            field = f"{where}.{unknown[0]}" if where else unknown[0]
            raise KubernetesError(status=400, reason="BadRequest",
                                  message=f'{self._kinds[resource]} "{name}": strict decoding error: '
                                          f'unknown field "{field}"')
        if error.validator == "required":
            missing = re.findall(r"'([^']+)' is a required property", error.message) or ["?"]
            detail = f"{where + '.' if where else ''}{missing[0]}: Required value"
        else:
            detail = f"{where}: {_api_server_wording(error, where)}"
        raise KubernetesError(status=422, reason="Invalid",
                              message=f'{self._kinds[resource]} "{name}" is invalid: {detail}')

    async def _collect_garbage(self, owner_uid: str) -> None:
        """Delete what the deleted object owned (background cascading deletion)."""
        async with self._lock:
            dependents = [(key, obj.raw) for key, obj in self.objects.items() if not obj.deleted and any(
                ref.get("uid") == owner_uid for ref in obj.get("metadata", {}).get("ownerReferences") or [])]
            for (resource, _, _), raw in dependents:
                self.objects[resource, raw["metadata"].get("namespace"), raw["metadata"]["name"]].delete()
                await self._buses[resource].put({"type": "DELETED", "object": raw})
                if resource == JOBS:  # the collector deletes in the background: the pods go too
                    self._stop_pods(raw["metadata"].get("namespace"), raw["metadata"]["name"])
        for _, raw in dependents:
            await self._collect_garbage(raw["metadata"]["uid"])

    async def put_object(self, resource: Any, obj: dict[str, Any]) -> None:
        """Create an object as a controller would (no admission), announcing it to watchers."""
        obj = copy.deepcopy(obj)
        meta = obj["metadata"]
        meta |= {"uid": meta.get("uid") or str(uuid.uuid4()), "creationTimestamp": _now(), "generation": 1,
                 "resourceVersion": str(next(self._versions))}
        async with self._lock:
            self.objects[resource, meta.get("namespace"), meta["name"]] = obj
            await self._buses[resource].put({"type": "ADDED", "object": obj})

    async def patch_object(self, resource: Any, namespace: str | None, name: str, change: dict[str, Any]) -> None:
        """Merge `change` into an object as a controller writing status would."""
        async with self._lock:
            key = (resource, namespace, name)
            if key not in self.objects or self.objects[key].deleted:
                return
            change = merged(change, {"metadata": {"resourceVersion": str(next(self._versions))}})
            self.objects[key].patch(change)
            await self._buses[resource].put({"type": "MODIFIED", "object": self.objects[key].raw})

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- the Job controller and the kubelet ------------------------------------------------

    def _stop_pods(self, namespace: str | None, job: str) -> None:
        """Every running pod of the Job: SIGTERM now, SIGKILL after its grace period (in the background)."""
        for pod, (process, grace) in list(self._processes.get((namespace or "", job), {}).items()):
            self._spawn(self._terminate(namespace or "", pod, process, grace))

    async def _terminate(self, namespace: str, pod: str, process: Any, grace: float) -> None:
        """What a kubelet does to a pod being deleted: SIGTERM to the container's process, then SIGKILL to all of it."""
        sent = time.monotonic()
        try:
            process.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            return  # it had exited already
        killed = False
        try:
            await asyncio.wait_for(asyncio.shield(process.wait()), timeout=grace)
        except TimeoutError:
            killed = True
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)  # the container goes: whatever it started too (torchrun's workers)
        await process.wait()
        self.terminations[namespace, pod] = Termination(process.returncode, time.monotonic() - sent, killed)

    async def _run_job(self, namespace: str, name: str) -> None:
        await asyncio.sleep(0.05)
        if self.job_gate is not None:
            await self.job_gate.wait()
        if (JOBS, namespace, name) not in self.objects or self.objects[JOBS, namespace, name].deleted:
            return  # deleted while held: a Job controller starts no pods for a Job that is gone
        if not await self._while_suspended(namespace, name):
            return
        self.jobs_started += 1
        job = self.objects[JOBS, namespace, name].raw
        spec = job["spec"]
        indexed = spec.get("completionMode") == "Indexed"
        completions = int(spec.get("completions") or 1)
        backoff_limit = int(spec.get("backoffLimit", 6))
        deadline = spec.get("activeDeadlineSeconds")
        await self.patch_object(JOBS, namespace, name, {"status": {"startTime": _now(), "active": completions}})
        failures = 0
        while True:
            if self.objects[JOBS, namespace, name].deleted:
                return  # its pods were stopped with it: the Job controller starts no retry for a Job that is gone
            ports = {port["containerPort"]: _free_port() for c in spec["template"]["spec"]["containers"]
                     for port in c.get("ports") or []}
            codes = await asyncio.gather(*[self._run_pod(job, index if indexed else None, ports, deadline)
                                           for index in range(completions)])
            if all(code == 0 for code in codes):
                await self.patch_object(JOBS, namespace, name, {"status": {
                    "active": 0, "succeeded": completions, "completionTime": _now(),
                    "conditions": [{"type": "Complete", "status": "True", "lastTransitionTime": _now()}]}})
                return
            failures += 1
            fail_now = {code for rule in (spec.get("podFailurePolicy") or {}).get("rules") or []
                        if rule.get("action") == "FailJob" and (rule.get("onExitCodes") or {}).get("operator") == "In"
                        for code in rule["onExitCodes"]["values"]}
            if failures > backoff_limit or any(code == 124 or code in fail_now for code in codes):
                reason = "DeadlineExceeded" if any(code == 124 for code in codes) else \
                    "PodFailurePolicy" if any(code in fail_now for code in codes) else "BackoffLimitExceeded"
                await self.patch_object(JOBS, namespace, name, {"status": {
                    "active": 0, "failed": failures,
                    "conditions": [{"type": "Failed", "status": "True", "reason": reason,
                                    "lastTransitionTime": _now()}]}})
                return
            await self.patch_object(JOBS, namespace, name, {"status": {"failed": failures}})

    async def _while_suspended(self, namespace: str, name: str) -> bool:
        """A suspended Job (`spec.suspend`) starts no pods until unsuspended; False if it is deleted meanwhile."""
        key = (JOBS, namespace, name)
        said = False
        while key in self.objects and not self.objects[key].deleted:
            suspended = bool(self.objects[key].raw["spec"].get("suspend"))
            if suspended != said:
                await self.patch_object(JOBS, namespace, name, {"status": {"conditions": [{
                    "type": "Suspended", "status": "True" if suspended else "False",
                    "reason": "JobSuspended" if suspended else "JobResumed", "lastTransitionTime": _now()}]}})
                said = suspended
            if not suspended:
                return True
            await asyncio.sleep(0.1)
        return False

    async def _run_pod(self, job: dict[str, Any], index: int | None, ports: dict[int, int],
                       deadline: int | None) -> int:
        namespace, job_name = job["metadata"]["namespace"], job["metadata"]["name"]
        template = job["spec"]["template"]
        pod_name = f"{job_name}-{'' if index is None else f'{index}-'}{secrets.token_hex(3)}"
        # The pod's annotations are its template's, as the Job controller makes them (plus the index).
        annotations = dict(template.get("metadata", {}).get("annotations") or {})
        if index is not None:
            annotations["batch.kubernetes.io/job-completion-index"] = str(index)
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": pod_name, "namespace": namespace, "annotations": annotations,
                            "labels": (template.get("metadata", {}).get("labels") or {}) | {
                                "job-name": job_name, "batch.kubernetes.io/job-name": job_name,
                                "controller-uid": job["metadata"]["uid"]},
                            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": job_name,
                                                 "uid": job["metadata"]["uid"], "controller": True}]},
               "spec": template["spec"], "status": {"phase": "Running"}}
        await self.put_object(PODS, pod)
        await self._wait_for_configmaps(template["spec"], namespace)
        container = template["spec"]["containers"][0]
        root = self.workdir / namespace / pod_name
        mounts = self._materialise_volumes(pod, container, namespace, root)
        env = self._container_env(container, namespace, pod, ports, index)
        termination = root / "termination-log"
        mounts[container.get("terminationMessagePath", "/dev/termination-log")] = termination

        def local(text: str) -> str:
            for path in sorted(mounts, key=len, reverse=True):
                text = text.replace(path, str(mounts[path]))
            return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)), text)

        env = {key: local(value) for key, value in env.items()}
        argv = [local(arg) for arg in container.get("command", []) + container.get("args", [])]
        launchers = {"driftloop": [sys.executable, "-m", "driftloop"],
                     "torchrun": [sys.executable, "-m", "torch.distributed.run"]}
        argv = launchers.get(argv[0], argv[:1]) + argv[1:]
        cwd = Path(local(container.get("workingDir") or str(root)))
        cwd.mkdir(parents=True, exist_ok=True)
        log_path = root / "log.txt"
        with open(log_path, "wb") as log:
            # A session of its own: the pod's processes are one group, as a container's are, for SIGKILL.
            process = await asyncio.create_subprocess_exec(*argv, env=env, cwd=cwd, stdout=log,
                                                           stderr=asyncio.subprocess.STDOUT, start_new_session=True)
            running = self._processes.setdefault((namespace, job_name), {})
            grace = float(template["spec"].get("terminationGracePeriodSeconds", 30))
            running[pod_name] = (process, grace)
            if self.objects[JOBS, namespace, job_name].deleted:
                # Deleted while this pod was being set up (its volumes, its process): `_stop_pods` found
                # nothing to stop then, and the pod would train on with no Job, its run left RUNNING.
                self._spawn(self._terminate(namespace, pod_name, process, grace))
            try:
                code = await asyncio.wait_for(asyncio.shield(process.wait()), timeout=deadline)
            except TimeoutError:
                process.kill()
                await process.wait()
                code = 124
            finally:
                running.pop(pod_name, None)
        message = termination.read_text(errors="replace")[:4096] if termination.exists() else ""
        if not message and code != 0 and container.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            message = "\n".join(log_path.read_text(errors="replace").splitlines()[-80:])[-4096:]
        await self.patch_object(PODS, namespace, pod_name, {"status": {
            "phase": "Succeeded" if code == 0 else "Failed",
            "containerStatuses": [{"name": container["name"], "ready": False, "restartCount": 0, "image": container["image"],
                                   "imageID": "", "state": {"terminated": {
                                       "exitCode": code, "reason": "Completed" if code == 0 else "Error",
                                       "message": message, "finishedAt": _now()}}}]}})
        return code

    async def _wait_for_configmaps(self, pod_spec: dict[str, Any], namespace: str, timeout: float = 120) -> None:
        """As the kubelet does, hold the pod (ContainerCreating) until its volumes' ConfigMaps exist."""
        names = [v["configMap"]["name"] for v in pod_spec.get("volumes") or [] if "configMap" in v]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all((CONFIGMAPS, namespace, name) in self.objects and not self.objects[CONFIGMAPS, namespace, name].deleted
                   for name in names):
                return
            await asyncio.sleep(0.05)

    def _materialise_volumes(self, pod: dict[str, Any], container: dict[str, Any], namespace: str,
                             root: Path) -> dict[str, Path]:
        volumes = {v["name"]: v for v in pod["spec"].get("volumes") or []}
        mounts: dict[str, Path] = {}
        for mount in container.get("volumeMounts") or []:
            volume = volumes[mount["name"]]
            local = root / "volumes" / mount["name"]
            local.mkdir(parents=True, exist_ok=True)
            if "configMap" in volume:
                data = self.objects[CONFIGMAPS, namespace, volume["configMap"]["name"]].raw.get("data") or {}
                for file, text in data.items():
                    (local / file).write_text(text, encoding="utf-8")
            for item in (volume.get("downwardAPI") or {}).get("items") or []:
                (local / item["path"]).write_text(_pod_field(pod, item["fieldRef"]["fieldPath"]), encoding="utf-8")
            mounts[mount["mountPath"]] = local
        return mounts

    def _container_env(self, container: dict[str, Any], namespace: str, pod: dict[str, Any], ports: dict[int, int],
                       index: int | None) -> dict[str, str]:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")} | self.pod_env
        if os.environ.get("PYTHONPATH"):  # the "image" is the code under test, also when a checkout is on the path
            env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        if index is not None:
            env["JOB_COMPLETION_INDEX"] = str(index)
        for source in container.get("envFrom") or []:
            if "secretRef" in source:
                import base64

                data = self.objects[SECRETS, namespace, source["secretRef"]["name"]].raw
                env |= {k: base64.b64decode(v).decode() for k, v in (data.get("data") or {}).items()}
                env |= data.get("stringData") or {}
        for item in container.get("env") or []:
            if "value" in item:
                env[item["name"]] = item["value"]
            elif "fieldRef" in item.get("valueFrom", {}):
                env[item["name"]] = _pod_field(pod, item["valueFrom"]["fieldRef"]["fieldPath"])
        if pod["spec"].get("automountServiceAccountToken") is not False and self.kubeconfig is not None:
            env["KUBECONFIG"] = str(self.kubeconfig)  # the in-cluster token and CA, as a kubeconfig
        for key, value in list(env.items()):  # cluster DNS and pod networking, on one host
            if value.endswith(".svc"):
                env[key] = "127.0.0.1"
            elif value.isdigit() and int(value) in ports:
                env[key] = str(ports[int(value)])
        return env


@attrs.frozen
class Termination:
    """How a pod ended once its Job was deleted."""

    exit_code: int | None
    seconds: float  # from SIGTERM to exit
    killed: bool  # SIGKILLed when its grace period was up, rather than exiting by itself


def _pod_field(pod: dict[str, Any], path: str) -> str:
    """A downward-API `fieldRef` (`metadata.annotations['k']`, `metadata.labels['k']`, `metadata.name`), as the
    kubelet resolves it for an env var or a volume file; a missing key is empty."""
    found = re.fullmatch(r"metadata\.(annotations|labels)\['([^']+)'\]", path)
    if found:
        return str((pod["metadata"].get(found.group(1)) or {}).get(found.group(2), ""))
    return str(pod["metadata"].get(path.removeprefix("metadata."), "")) if path.startswith("metadata.") else ""


def _propagates(request: Any) -> bool:
    """Whether a Job delete takes its pods: an API server orphans them unless told Background or Foreground."""
    options = request.data if isinstance(request.data, dict) else {}
    policy = options.get("propagationPolicy") or (request.params or {}).get("propagationPolicy")
    if policy is None and options.get("orphanDependents") is False:
        return True
    return policy in ("Background", "Foreground")


def _selected(request: Any, obj: dict[str, Any]) -> bool:
    """Whether `obj` passes the request's `fieldSelector` (only `metadata.name=` and `metadata.namespace=`)
    and its `labelSelector` (`k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (a,b)`)."""
    for term in filter(None, (request.params or {}).get("fieldSelector", "").split(",")):
        field, _, value = term.partition("=")
        if field in ("metadata.name", "metadata.namespace") and \
                (obj.get("metadata") or {}).get(field.split(".")[1]) != value.lstrip("="):
            return False
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return all(_label_term(term.strip(), labels)
               for term in re.split(r",(?![^(]*\))", (request.params or {}).get("labelSelector", "")) if term.strip())


def _label_term(term: str, labels: dict[str, str]) -> bool:
    if found := re.fullmatch(r"(\S+)\s+(in|notin)\s+\((.*)\)", term):
        key, operator, values = found.group(1), found.group(2), {v.strip() for v in found.group(3).split(",")}
        return (labels.get(key) in values) if operator == "in" else (labels.get(key) not in values)
    if "!=" in term:
        key, value = term.split("!=", 1)
        return labels.get(key.strip()) != value.strip()
    if "=" in term:
        key, value = term.split("=", 1)
        return labels.get(key.strip()) == value.lstrip("=").strip()
    return term[1:] not in labels if term.startswith("!") else term in labels


def _api_server_wording(error: Any, where: str) -> str:
    """jsonschema's complaint, worded as the Kubernetes API server words it."""
    rule, got = error.validator, error.instance
    if rule == "enum":
        return f"Unsupported value: {got!r}: supported values: {', '.join(map(repr, error.validator_value))}"
    words = {"maximum": f"should be less than or equal to {error.validator_value}",
             "minimum": f"should be greater than or equal to {error.validator_value}",
             "pattern": f"should match '{error.validator_value}'",
             "type": f"must be of type {error.validator_value}",
             "minLength": f"should be at least {error.validator_value} chars long",
             "maxLength": f"may not be longer than {error.validator_value}"}
    return f"Invalid value: {got!r}: {where} in body {words.get(rule, error.message)}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalCluster:
    """The emulator served on loopback from a background thread, with a kubeconfig for clients."""

    def __init__(self, workdir: Path, *, pod_env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.kubeconfig = workdir / "kubeconfig"
        self._pod_env = pod_env or {}
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.cluster: Cluster | None = None
        self.url = ""
        self._thread = threading.Thread(target=self._serve, name="kube-emulator", daemon=True)
        self._failure: BaseException | None = None

    def __enter__(self) -> LocalCluster:
        self._thread.start()
        if not self._ready.wait(30) or self._failure is not None:
            raise RuntimeError(f"emulator did not start: {self._failure}")
        self._write_kubeconfig()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)

    def _serve(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as e:  # surfaced by __enter__
            self._failure = e
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with Cluster(workdir=self.workdir / "nodes", pod_env=self._pod_env,
                           kubeconfig=self.kubeconfig) as cluster, \
                kmock.Server(cluster) as server:
            self.cluster = cluster
            self.url = str(server.url).rstrip("/")
            self._ready.set()
            await self._stop.wait()
            for task in list(cluster._tasks):
                task.cancel()

    def call(self, fn: Any, *args: Any) -> Any:
        """Run `fn(*args)` (a coroutine function or a plain one) on the emulator's loop; return its result."""
        assert self._loop is not None

        async def invoke() -> Any:
            result = fn(*args)
            return await result if asyncio.iscoroutine(result) else result

        future: Future[Any] = asyncio.run_coroutine_threadsafe(invoke(), self._loop)
        return future.result(timeout=60)

    def fire_cronjob(self, namespace: str, name: str) -> str:
        """Start a CronJob's Job now, as `kubectl create job --from=cronjob/NAME` does; return the Job's name.

        kubectl cannot do it here (it sends built-in kinds as protobuf, which the emulator does not
        decode), so this is kubectl's own recipe through the `kubernetes` client: the jobTemplate,
        its labels, the `cronjob.kubernetes.io/instantiate: manual` annotation and an owner
        reference to the CronJob. The Job runner then runs it like any other Job.
        """
        import kubernetes

        api = kubernetes.config.new_client_from_config(config_file=str(self.kubeconfig))
        batch = kubernetes.client.BatchV1Api(api)
        cronjob = api.sanitize_for_serialization(batch.read_namespaced_cron_job(name, namespace))
        template = cronjob["spec"]["jobTemplate"]
        job_name = f"{name}-manual-{secrets.token_hex(3)}"
        batch.create_namespaced_job(namespace, {
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": job_name, "namespace": namespace,
                         "labels": template.get("metadata", {}).get("labels") or {},
                         "annotations": (template.get("metadata", {}).get("annotations") or {})
                         | {"cronjob.kubernetes.io/instantiate": "manual"},
                         "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": name,
                                              "uid": cronjob["metadata"]["uid"], "controller": True}]},
            "spec": template["spec"]})
        return job_name

    def _write_kubeconfig(self) -> None:
        config = {"apiVersion": "v1", "kind": "Config", "current-context": "emulator",
                  "clusters": [{"name": "emulator", "cluster": {"server": self.url}}],
                  "users": [{"name": "tester", "user": {"token": "test-token"}}],
                  "contexts": [{"name": "emulator", "context": {"cluster": "emulator", "user": "tester",
                                                                "namespace": "default"}}]}
        self.kubeconfig.write_text(yaml.safe_dump(config), encoding="utf-8")
