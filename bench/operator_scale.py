"""The MLTrainingJob operator under load: 1,000 resources created at once against the emulator.

Measures, per resource, the time from its create answer to the create of its Job (both
stamped by the emulated API server, on one clock), and the operator process's peak RSS
(VmHWM). Goal: p99 <= 2 s and RSS <= 200 MB.

Baseline, same run, same emulator: a bare kopf operator whose on-create handler creates one
Job with the same client and nothing else. The ratio (driftloop p99 / bare p99) is what the
operator adds over kopf and the API round trips themselves; the absolute figures also carry
the emulator's own cost (an in-process Python API server on the same cores), reported as
`emulator_cpu_s` beside `operator_cpu_s`, with the requests it served per verb: on a busy
machine, wall-clock latency is mostly waiting for a core, and these say where the CPU went.

Jobs never run here (the emulated kubelet is held), so only the create path is measured. The burst comes
from a process of its own (aiohttp, its default 100 connections), not from the thread beside the emulator.

`--replicas`: two operator replicas on one Lease (leader plus standby). The same create→Job
latency with the standby beside the leader, then (once every status records its Job: a steady state)
the leader is SIGKILLed and a second batch is created: the takeover time (kill → the standby holds
the Lease; kill → the first Job the standby makes, and that Job after the Lease) and a check that every resource got exactly one Job (`operator_scale_replicas.json`).
(Named operator_scale, not operator: a bench/operator.py would shadow the standard library.)
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the emulator harness lives with the tests

from _common import write_result  # noqa: E402

from driftloop.constants import K8S_GROUP, K8S_PLURAL, K8S_VERSION  # noqa: E402

NAME = "operator_scale"
RESOURCES = int(os.environ.get("DRIFTLOOP_BENCH_RESOURCES", "1000"))
NAMESPACE = "default"
GOAL_P99_S = 2.0
GOAL_RSS_MB = 200.0
LEASE_S = 15.0  # `driftloop operator`'s default --lease-duration, which the replicas run with
TIMEOUT_S = 600
BARE_OPERATOR = '''
import kopf, kubernetes

@kopf.on.startup()
def configure(settings, memo, **_):
    settings.execution.max_workers = 16
    kubernetes.config.load_kube_config()
    memo.batch = kubernetes.client.BatchV1Api()

@kopf.on.create("{group}", "{version}", "{plural}")
def create_job(name, namespace, body, memo, **_):
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": f"{name}-g1", "namespace": namespace},
           "spec": {"template": {"spec": {"restartPolicy": "Never",
                                          "containers": [{"name": "train", "image": "busybox"}]}}}}
    kopf.adopt(job, owner=body)
    memo.batch.create_namespaced_job(namespace, job)
'''.replace("{group}", K8S_GROUP).replace("{version}", K8S_VERSION).replace("{plural}", K8S_PLURAL)


def resource(i: int) -> dict[str, Any]:
    return {"apiVersion": f"{K8S_GROUP}/{K8S_VERSION}", "kind": "MLTrainingJob",
            "metadata": {"name": f"bench-{i:04d}", "namespace": NAMESPACE},
            "spec": {"dataSource": {"s3Bucket": "bench", "path": f"tables/{i}.csv", "target": "churned"},
                     "hyperparameters": {"epochs": "5"},
                     "mlflow": {"trackingUri": "http://mlflow.driftloop.svc:5000", "modelName": f"bench-{i}"}}}


def cpu_seconds(pid: int, tid: int | None = None) -> float:
    """User + system CPU a process (or one of its threads) has used: tells operator-bound from emulator-bound."""
    stat = Path(f"/proc/{pid}/task/{tid}/stat" if tid is not None else f"/proc/{pid}/stat")
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def create_all(url: str, *, start: int = 0, count: int = RESOURCES) -> None:
    """The burst, from a process of its own, as a cluster's clients are: in the bench's own process, the load
    client and the emulated API server (a thread here) would take turns on one interpreter lock."""
    subprocess.run([sys.executable, __file__, "--create", url, str(start), str(count)], check=True, cwd=REPO)


async def _create_all(url: str, start: int, count: int) -> None:
    import aiohttp

    path = f"{url}/apis/{K8S_GROUP}/{K8S_VERSION}/namespaces/{NAMESPACE}/{K8S_PLURAL}"
    async with aiohttp.ClientSession() as session:
        async def create(i: int) -> None:
            async with session.post(path, json=resource(i)) as answer:
                if answer.status >= 300:
                    raise RuntimeError(f"create {i}: {answer.status} {await answer.text()}")

        await asyncio.gather(*(create(i) for i in range(start, start + count)))


def run_operator(command: list[str], label: str) -> dict[str, Any]:
    """One fresh emulator and one operator process; all resources at once; latencies and peak RSS."""
    from tests.operator.cluster import LocalCluster

    workdir = Path(tempfile.mkdtemp(prefix=f"driftloop-bench-{label}-"))
    with LocalCluster(workdir) as local:
        import yaml

        local.call(local.cluster.install_crd, yaml.safe_load((REPO / "crds" / "mltrainingjob.yaml").read_text()))
        local.call(lambda: setattr(local.cluster, "job_gate", asyncio.Event()))  # held: Jobs never run
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "MLFLOW_"))}
        env |= {"KUBECONFIG": str(local.kubeconfig), "PYTHONUNBUFFERED": "1"}
        log = open(workdir / "operator.log", "wb")
        process = subprocess.Popen(command, env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120
            while local.cluster.watches.get(K8S_PLURAL, 0) == 0:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{label} operator did not start: {(workdir / 'operator.log').read_text()[-2000:]}")
                time.sleep(0.2)
            emulator_thread = local._thread.native_id
            idle_rss, idle_cpu = peak_rss_mb(process.pid), cpu_seconds(process.pid)
            idle_emulator_cpu = cpu_seconds(os.getpid(), emulator_thread)
            served_before = dict(local.cluster.served)
            create_all(local.url)
            stamps = local.cluster.created_at
            deadline = time.monotonic() + TIMEOUT_S
            while sum(1 for key in list(stamps) if key[0] == "jobs") < RESOURCES:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"{label}: only {sum(1 for k in list(stamps) if k[0] == 'jobs')} Jobs")
                time.sleep(0.2)
            # from the first resource's create, as the API server stamped it (the load process starts before it)
            resources = [t for key, t in list(stamps.items()) if key[0] == K8S_PLURAL]
            created_s = max(resources) - min(resources)
            all_jobs_s = max(t for key, t in list(stamps.items()) if key[0] == "jobs") - min(resources)
            rss, busy_cpu = peak_rss_mb(process.pid), cpu_seconds(process.pid) - idle_cpu
            emulator_cpu = cpu_seconds(os.getpid(), emulator_thread) - idle_emulator_cpu
            requests = {verb: count - served_before.get(verb, 0) for verb, count in local.cluster.served.items()
                        if count > served_before.get(verb, 0) and not verb.startswith("watch")}
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
            log.close()
        latencies = sorted(stamps["jobs", NAMESPACE, f"bench-{i:04d}-g1"] - stamps[K8S_PLURAL, NAMESPACE,
                                                                                  f"bench-{i:04d}"]
                           for i in range(RESOURCES))
    return {"p50_s": round(percentile(latencies, 50), 4), "p99_s": round(percentile(latencies, 99), 4),
            "max_s": round(latencies[-1], 4), "peak_rss_mb": round(rss, 1), "idle_rss_mb": round(idle_rss, 1),
            "create_all_s": round(created_s, 3), "all_jobs_created_s": round(all_jobs_s, 3),
            "operator_cpu_s": round(busy_cpu, 2), "emulator_cpu_s": round(emulator_cpu, 2),
            "requests": dict(sorted(requests.items()))}


def run_replicas() -> dict[str, Any]:
    """Leader + standby; the burst; the leader killed; a second batch; the takeover and one Job per resource."""
    import kmock

    from tests.operator.cluster import LEASES, LocalCluster

    TRAINING_JOBS = kmock.resource(K8S_GROUP, K8S_VERSION, K8S_PLURAL)  # noqa: N806 (the emulator's key, as LEASES)

    second_batch = max(1, RESOURCES // 10)
    workdir = Path(tempfile.mkdtemp(prefix="driftloop-bench-replicas-"))
    with LocalCluster(workdir) as local:
        import yaml

        local.call(local.cluster.install_crd, yaml.safe_load((REPO / "crds" / "mltrainingjob.yaml").read_text()))
        local.call(lambda: setattr(local.cluster, "job_gate", asyncio.Event()))  # held: Jobs never run
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "MLFLOW_"))}
        env |= {"KUBECONFIG": str(local.kubeconfig), "PYTHONUNBUFFERED": "1"}

        def replica(identity: str) -> subprocess.Popen:
            log = open(workdir / f"{identity}.log", "wb")
            return subprocess.Popen([sys.executable, "-m", "driftloop", "operator", "--log-format", "plain",
                                     "--identity", identity], env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)

        def holder() -> str | None:
            key = (LEASES, NAMESPACE, "driftloop-operator")
            if key not in local.cluster.objects or local.cluster.objects[key].deleted:
                return None
            return (local.cluster.objects[key].raw.get("spec") or {}).get("holderIdentity")

        def jobs() -> int:
            return sum(1 for key in list(local.cluster.created_at) if key[0] == "jobs")

        def recorded() -> int:
            """Resources whose status records their Job: in step, nothing for a new leader to resume."""
            objects = local.cluster.objects
            return sum(1 for i in range(RESOURCES)
                       if ((objects[TRAINING_JOBS, NAMESPACE, f"bench-{i:04d}"].raw.get("status") or {}).get("jobName")))

        def until(what: str, done: Any, timeout: float = TIMEOUT_S) -> None:
            deadline = time.monotonic() + timeout
            while not done():
                if time.monotonic() > deadline:
                    raise RuntimeError(f"replicas: timed out waiting for {what}")
                time.sleep(0.05)

        leader = replica("replica-a")
        until("the leader to watch", lambda: local.cluster.watches.get(K8S_PLURAL, 0) > 0, 120)
        standby = replica("replica-b")
        until("the standby to wait", lambda: "waiting for lease" in (workdir / "replica-b.log").read_text(), 120)
        try:
            create_all(local.url)
            until("the first burst's Jobs", lambda: jobs() >= RESOURCES)
            stamps = dict(local.cluster.created_at)
            latencies = sorted(stamps["jobs", NAMESPACE, f"bench-{i:04d}-g1"] - stamps[K8S_PLURAL, NAMESPACE,
                                                                                      f"bench-{i:04d}"]
                               for i in range(RESOURCES))
            until("the first burst's statuses", lambda: recorded() >= RESOURCES)  # a steady state, then the kill
            leader.kill()
            killed = time.monotonic()
            create_all(local.url, start=RESOURCES, count=second_batch)
            until("the standby to take the Lease", lambda: holder() == "replica-b")
            took_lease = time.monotonic() - killed
            until("the second batch's Jobs", lambda: jobs() >= RESOURCES + second_batch)
            first_job = min(stamps_after for key, stamps_after in local.cluster.created_at.items()
                            if key[0] == "jobs" and stamps_after > killed) - killed
            all_jobs = max(local.cluster.created_at.values()) - killed
            job_names = [key[2] for key in local.cluster.created_at if key[0] == "jobs"]
            expected = {f"bench-{i:04d}-g1" for i in range(RESOURCES + second_batch)}  # one per resource, no other
        finally:
            for process in (leader, standby):
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
    return {"p50_s": round(percentile(latencies, 50), 4), "p99_s": round(percentile(latencies, 99), 4),
            "takeover_lease_s": round(took_lease, 2), "takeover_first_job_s": round(first_job, 2),
            "lease_to_first_job_s": round(first_job - took_lease, 2),
            "second_batch_all_jobs_s": round(all_jobs, 2), "second_batch": second_batch,
            "jobs": len(job_names), "extra_jobs": len(set(job_names) - expected),
            "missing_jobs": len(expected - set(job_names))}


def percentile(sorted_values: list[float], p: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


def main_replicas() -> None:
    measured = run_replicas()
    path = write_result(f"{NAME}_replicas", {
        "unit": "seconds", "measured": measured["takeover_lease_s"], "resources": RESOURCES,
        # The standby wakes when the Lease expires, dated by the holder's last renewal (before the kill).
        "goal": {"metric": "takeover_lease_s", "op": "<=", "value": LEASE_S},
        "passed_goal": measured["takeover_lease_s"] <= LEASE_S and measured["extra_jobs"] == 0
        and measured["missing_jobs"] == 0,
        "notes": "two replicas on one Lease (15 s): p50/p99 create→Job with the standby beside the leader; "
                 "then the leader SIGKILLed and a second batch created: kill → standby holds the Lease, "
                 "kill → its first Job", **measured})
    print(f"{NAME} replicas: p99 {measured['p99_s']}s; takeover {measured['takeover_lease_s']}s (first Job "
          f"{measured['takeover_first_job_s']}s, {measured['lease_to_first_job_s']}s after the Lease); extra/missing Jobs {measured['extra_jobs']}/{measured['missing_jobs']} -> {path}")


def main() -> None:
    if sys.argv[1:2] == ["--create"]:
        url, start, count = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        asyncio.run(_create_all(url, start, count))
        return
    if "--replicas" in sys.argv[1:]:
        main_replicas()
        return
    bare_module = Path(tempfile.mkdtemp(prefix="driftloop-bench-bare-")) / "bare_operator.py"
    bare_module.write_text(BARE_OPERATOR)
    kopf = [sys.executable, "-m", "kopf", "run", "--standalone", "--all-namespaces"]
    baseline = run_operator(kopf + [str(bare_module)], "bare")
    measured = run_operator([sys.executable, "-m", "driftloop", "operator", "--log-format", "plain"], "driftloop")
    ratio = measured["p99_s"] / baseline["p99_s"] if baseline["p99_s"] > 0 else float("nan")
    passed = measured["p99_s"] <= GOAL_P99_S and measured["peak_rss_mb"] <= GOAL_RSS_MB
    path = write_result(NAME, {
        "unit": "seconds", "measured": measured["p99_s"], "baseline": baseline["p99_s"], "ratio": round(ratio, 3),
        "p99_s": measured["p99_s"], "peak_rss_mb": measured["peak_rss_mb"],
        "goal": {"metric": "p99_s", "op": "<=", "value": GOAL_P99_S, "and": {"peak_rss_mb": GOAL_RSS_MB}},
        "passed_goal": passed, "resources": RESOURCES,
        "notes": "measured/baseline = p99 seconds from an MLTrainingJob's create to its Job's create; "
                 "baseline = a bare kopf operator creating one Job per resource, same emulator, same run",
        "driftloop": measured, "bare_kopf": baseline})
    print(f"{NAME}: p50 {measured['p50_s']}s p99 {measured['p99_s']}s (bare kopf p99 {baseline['p99_s']}s, "
          f"ratio {ratio:.2f}); peak RSS {measured['peak_rss_mb']} MB -> {path}")
    print(json.dumps(measured))


if __name__ == "__main__":
    main()
