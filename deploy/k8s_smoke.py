"""The rendered Kubernetes manifests run for real with ``podman kube play`` (``deploy/k8s_smoke.sh``
runs this; see docs/deployment.md, "Run for real here: make k8s-test").

``kubectl kustomize deploy/k8s/overlays/scaled`` is rendered, changed where podman 4.3 cannot
play it as a cluster would (``deploy/k8s_play.py``: each change printed with its reason), and
played with the images ``deploy/smoke.sh`` builds (the API pods from the ``api`` target, the
worker pod from the ``worker`` target): two API pods and one Celery worker pod,
against this machine's PostgreSQL (a fresh database ``digits_k8s_<hex>``) and Redis (a free db
number), with the model versions in a bucket of a ``moto_server`` on this machine. Then:

1. both API pods answer the manifest's readiness probe (its path and ``Host`` header) and
   predict the lecture's 360 test rows with the shipped model's accuracy;
2. the worker pod is up (Celery's ``ready.``);
3. a short logistic job submitted to API pod 0 with the admin key of the Secret's file runs
   on the worker pod, is published into the bucket, and API pod 1, whose versions folder is
   its own emptyDir, serves it: the time from the job's ``finished`` to the first answer is
   measured;
4. the figures: cold start of each pod, that time, the resident memory of each pod.

Everything made (pods, volumes, the podman secret, the database, the Redis db, the moto
process) is removed on exit, failures included.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime as dt
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import yaml

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
import k8s_play  # noqa: E402
from smoke_stack import (  # noqa: E402
    Report,
    SmokeFailure,
    free_port,
    fresh_database,
    fresh_redis_db,
    podman,
    say,
    wait_for,
)

ROOT = HERE.parent
SCALED = ROOT / "deploy" / "k8s" / "overlays" / "scaled"
NETWORK = "slirp4netns:allow_host_loopback=true"
APP_UID = 10001
JOB = {
    "family": "logistic",
    "name": "logistic",
    "promote": False,
    "hyperparameters": {"iterations": 100},
}
CREDENTIALS = {"aws_access_key_id": "k8s-smoke", "aws_secret_access_key": "k8s-smoke"}
REGION = "us-east-1"
#: The image names the manifests give (deploy/k8s), played with the images smoke.sh builds.
API_IMAGE, WORKER_IMAGE = "digits-serve-api:latest", "digits-serve-worker:latest"


def render() -> list[dict[str, Any]]:
    done = subprocess.run(
        ["kubectl", "kustomize", str(SCALED)], capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        raise SmokeFailure(f"kubectl kustomize failed: {done.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@contextlib.contextmanager
def moto_server(run_id: str) -> Iterator[tuple[int, str]]:
    """moto's S3 server on 127.0.0.1:<free port> with a bucket; yields (port, bucket)."""
    port = free_port()
    exe = Path(sys.executable).with_name("moto_server")
    process = subprocess.Popen(
        [str(exe), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise SmokeFailure(f"moto_server did not listen on {port}")
            time.sleep(0.1)
        bucket = f"digits-k8s-{run_id}"
        s3(port).create_bucket(Bucket=bucket)
        yield port, bucket
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def s3(port: int) -> Any:
    return boto3.session.Session().client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id=CREDENTIALS["aws_access_key_id"],
        aws_secret_access_key=CREDENTIALS["aws_secret_access_key"],
        region_name=REGION,
    )


def logs(container: str, tail: int = 0) -> str:
    """The container's output, stdout and stderr (Celery and uvicorn log to stderr)."""
    argv = ["podman", "logs", *(["--tail", str(tail)] if tail else []), container]
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    return done.stdout + done.stderr


def started_at(container: str) -> float:
    """The container's start as a Unix time (podman's RFC 3339 with nanoseconds)."""
    text = podman("inspect", "--format", "{{json .State.StartedAt}}", container).strip().strip('"')
    text = re.sub(r"(\.\d{6})\d*", r"\1", text).replace("Z", "+00:00")
    return dt.datetime.fromisoformat(text).timestamp()


def rss_bytes(container: str) -> int:
    """Resident memory of every process of the container (VmRSS summed, from /proc)."""
    pid = int(podman("inspect", "--format", "{{.State.Pid}}", container).strip())
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
    tree, grew = {pid}, True
    while grew:
        more = {child for child, parent in parents.items() if parent in tree} - tree
        grew, tree = bool(more), tree | more
    total = 0
    for member in tree:
        with contextlib.suppress(OSError):
            status = Path(f"/proc/{member}/status").read_text()
            found = re.search(r"VmRSS:\s+(\d+) kB", status)
            total += int(found.group(1)) * 1024 if found else 0
    return total


class Cluster:
    """The played pods, the podman secret and the volumes; ``down()`` removes them."""

    def __init__(self, work: Path, run_id: str, report: Report) -> None:
        self.work, self.run_id, self.report = work, run_id, report
        self.files: list[Path] = []
        self.volumes: list[str] = []
        self.secret: str | None = None
        self.admin_key = secrets.token_urlsafe(24)
        self.api: dict[str, str] = {}  # container -> base URL
        self.worker = ""
        self.probe: tuple[str, dict[str, str]] = ("", {})

    def down(self) -> None:
        for path in reversed(self.files):
            podman("kube", "down", str(path), check=False, timeout=120)
        for volume in self.volumes:
            podman("volume", "rm", "-f", volume, check=False)
        if self.secret:
            podman("secret", "rm", self.secret, check=False)

    def headers(self, admin: bool = False) -> dict[str, str]:
        headers = dict(self.probe[1])
        if admin:
            headers["Authorization"] = f"Bearer {self.admin_key}"
        return headers

    def write_secret(self, rendered: list[dict[str, Any]], database: str) -> Path:
        """The Secret the operator creates (docs): podman secret + the key file's folder."""
        api = next(
            d
            for d in rendered
            if k8s_play.kind_of(d) == "Deployment" and k8s_play.component(d) == "api"
        )
        target, item = k8s_play.admin_key_file(api)
        volume = next(v for v in api["spec"]["template"]["spec"]["volumes"] if "secret" in v)
        keys = self.work / "keys"
        keys.mkdir(mode=0o750)
        (keys / item).write_text(f"{self.admin_key}\n")
        os.chown(keys, APP_UID, APP_UID)
        os.chown(keys / item, APP_UID, APP_UID)
        (keys / item).chmod(int(volume["secret"].get("defaultMode", 0o644)))
        values = {
            "database_url": f"postgresql+psycopg://postgres@digits-postgres:5432/{database}",
            "admin_api_key": self.admin_key,
            **CREDENTIALS,
        }
        name = volume["secret"]["secretName"]
        payload = self.work / "secret.json"
        payload.write_bytes(k8s_play.secret_payload(values))
        podman("secret", "create", name, str(payload))
        self.secret = name
        payload.unlink()
        self.report.check(True, "Secret created", f"{name}: {', '.join(values)}; key file {target}")
        return keys

    def play(self, docs: list[dict[str, Any]], what: str) -> float:
        path = self.work / f"{what}.yaml"
        path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
        self.files.append(path)
        self.volumes += k8s_play.emptydir_volumes(docs)
        started = time.monotonic()
        podman("kube", "play", "--network", NETWORK, str(path), timeout=300)
        return time.monotonic() - started


def container_of(doc: dict[str, Any]) -> str:
    """podman 4.3's name of a Deployment's (first) container: <name>-pod-0-<container>."""
    name = doc["spec"]["template"]["spec"]["containers"][0]["name"]
    return f"{k8s_play.name_of(doc)}-pod-0-{name}"


def check_images(cluster: Cluster, api: dict[str, str], worker_image: str) -> None:
    """Each pod's container runs the image it should: API pods the API image, the worker pod
    the worker image (what podman started, read back)."""
    expected = {**api, cluster.worker: worker_image}
    running = {
        container: podman("inspect", "--format", "{{.ImageName}}", container).strip()
        for container in expected
    }
    cluster.report.check(
        running == expected,
        "each pod runs its image",
        "; ".join(f"{c}: {i}" for c, i in running.items()),
    )


def wait_ready(cluster: Cluster, timeout: float = 300) -> None:
    path, _ = cluster.probe
    ready: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while len(ready) < len(cluster.api):
        for container, base in cluster.api.items():
            if container in ready:
                continue
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(base + path, headers=cluster.headers(), timeout=2).status_code == 200:
                    ready[container] = time.time()
        if time.monotonic() > deadline:
            tails = {c: logs(c, 30) for c in cluster.api}
            raise SmokeFailure(f"API pods not ready after {timeout:.0f} s: {tails}")
        time.sleep(0.2)
    for container, at in ready.items():
        cluster.report.check(
            True, f"{container} ready", f"GET {path} with the probe's headers: 200"
        )
        cluster.report.figure(
            f"cold start {container} (container start -> {path} 200)",
            f"{at - started_at(container):.1f} s",
        )


def wait_worker(cluster: Cluster) -> None:
    try:
        wait_for(lambda: " ready." in logs(cluster.worker), 300, "the worker pod", every=0.5)
    except SmokeFailure as failure:
        raise SmokeFailure(f"{failure}: {logs(cluster.worker, 30)}") from None
    # Celery's own time stamp of its 'ready.' line (UTC in the image).
    found = re.search(
        r"\[([\d-]+ [\d:]+,\d+): INFO/MainProcess\] \S+ ready\.", logs(cluster.worker)
    )
    at = time.time()
    if found:
        stamp = dt.datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S,%f")
        at = stamp.replace(tzinfo=dt.UTC).timestamp()
    cluster.report.check(True, f"{cluster.worker} up", "celery 'ready.'")
    cluster.report.figure(
        f"cold start {cluster.worker} (container start -> 'ready.')",
        f"{at - started_at(cluster.worker):.1f} s",
    )


def check_predictions(cluster: Cluster) -> None:
    from training.contract import read_manifest
    from training.data import load_split

    split = load_split()
    rows, labels = split.x_test.tolist(), split.y_test.tolist()
    expected = read_manifest(ROOT / "models" / "logistic" / "1").metrics.test_accuracy
    for container, base in cluster.api.items():
        response = httpx.post(
            f"{base}/models/logistic/predict",
            params={"version": 1},
            json={"instances": rows},
            headers=cluster.headers(),
            timeout=60,
        )
        if response.status_code != 200:
            raise SmokeFailure(f"{container}: {response.status_code} {response.text[:300]}")
        got = [p["label"] for p in response.json()["predictions"]]
        accuracy = sum(int(a == b) for a, b in zip(got, labels, strict=True)) / len(labels)
        cluster.report.check(
            abs(accuracy - expected) < 1e-9,
            f"{container}: logistic v1 predicts the 360 test rows",
            f"accuracy {accuracy:.4f} (the manifest's {expected:.4f})",
        )


def check_job(cluster: Cluster, moto_port: int, bucket: str) -> str:
    """Job on pod 0 -> worker pod -> bucket -> pod 1; returns the version."""
    (first, api0), (second, api1) = list(cluster.api.items())[:2]
    submitted = httpx.post(
        f"{api0}/train", json=JOB, headers=cluster.headers(admin=True), timeout=10
    )
    if submitted.status_code != 202:
        raise SmokeFailure(f"POST /train: {submitted.status_code} {submitted.text[:300]}")
    job_id = submitted.json()["id"]

    def finished() -> dict[str, Any] | None:
        job: dict[str, Any] = httpx.get(
            f"{api0}/train/{job_id}", headers=cluster.headers(), timeout=5
        ).json()
        return job if job["status"] in ("succeeded", "failed", "cancelled") else None

    try:
        job = wait_for(finished, 300, f"job {job_id}", every=0.2)
    except SmokeFailure as failure:
        raise SmokeFailure(f"{failure}: worker: {logs(cluster.worker, 20)}") from None
    cluster.report.check(
        job["status"] == "succeeded" and job["model"] is not None,
        f"POST /train to {first} (admin key from the Secret's file): job ran on the worker pod",
        f"{job['status']}: {job['model'] or job['error']}",
    )
    version = str(job["model"]["version"])
    done_at = dt.datetime.fromisoformat(str(job["finished"]).replace("Z", "+00:00")).timestamp()

    def served() -> bool:
        response = httpx.post(
            f"{api1}/models/logistic/predict",
            params={"version": version},
            json={"pixels": [0] * 64},
            headers=cluster.headers(),
            timeout=10,
        )
        return response.status_code == 200 and str(response.json()["version"]) == version

    wait_for(served, 120, f"{second} to serve logistic v{version}", every=0.05)
    lag = time.time() - done_at
    keys = [o["Key"] for o in s3(moto_port).list_objects_v2(Bucket=bucket).get("Contents", [])]
    manifest = f"versions/logistic/{version}/manifest.json"
    cluster.report.check(
        manifest in keys,
        f"published into the bucket: s3://{bucket}/{manifest}",
        f"{len(keys)} objects",
    )
    cached = podman("exec", second, "ls", f"/versions/logistic/{version}", check=False).split()
    cluster.report.check(
        "manifest.json" in cached and "model.pt" in cached,
        f"{second} serves logistic v{version}, pulled from the bucket into its own emptyDir",
        ", ".join(sorted(cached)),
    )
    cluster.report.figure(f"job finished -> {second} serves v{version}", f"{lag:.2f} s")
    return version


def scale_up(cluster: Cluster, played: list[dict[str, Any]], version: str) -> None:
    """One more API pod, as the HPA would add: cold start with the bucket's version to pull."""
    template = next(d for d in played if k8s_play.name_of(d).endswith("-api-1"))
    extra = copy.deepcopy(template)
    old, new = k8s_play.name_of(template), k8s_play.name_of(template)[:-1] + "2"
    extra["metadata"]["name"] = new
    pod = extra["spec"]["template"]["spec"]
    for volume in pod["volumes"]:
        volume["name"] = volume["name"].replace(old, new)
    port = free_port()
    container = pod["containers"][0]
    for mount in container["volumeMounts"]:
        mount["name"] = mount["name"].replace(old, new)
    next(p for p in container["ports"] if p["name"] == "http")["hostPort"] = port
    config = [d for d in played if k8s_play.kind_of(d) == "ConfigMap"]
    took = cluster.play([*config, extra], "scale-up")
    name = container_of(extra)
    cluster.api = {name: f"http://127.0.0.1:{port}"}
    say(f"-- a third API pod (the HPA's scale-up): played in {took:.1f} s")
    wait_ready(cluster)
    response = httpx.post(
        f"http://127.0.0.1:{port}/models/logistic/predict",
        params={"version": version},
        json={"pixels": [0] * 64},
        headers=cluster.headers(),
        timeout=10,
    )
    cluster.report.check(
        response.status_code == 200, f"{name} serves logistic v{version} from its first ready", ""
    )


def figures_rss(cluster: Cluster, containers: list[str]) -> None:
    for container in containers:
        cluster.report.figure(
            f"RSS {container} (VmRSS of its processes)", f"{rss_bytes(container) / 2**20:.0f} MiB"
        )


def run(args: argparse.Namespace) -> int:
    report = Report()
    run_id = uuid.uuid4().hex[:6]
    rendered = render()
    say(
        f"-- rendered {SCALED.relative_to(ROOT)}: "
        + ", ".join(f"{k8s_play.kind_of(d)} {k8s_play.name_of(d)}" for d in rendered)
    )
    api_doc = next(
        d
        for d in rendered
        if k8s_play.kind_of(d) == "Deployment" and k8s_play.component(d) == "api"
    )
    ports = tuple(free_port() for _ in range(int(api_doc["spec"]["replicas"])))
    cluster = Cluster(Path(args.work), run_id, report)
    cluster.probe = k8s_play.api_probe(api_doc)
    with contextlib.ExitStack() as stack:
        database = stack.enter_context(fresh_database("digits_k8s"))
        redis_db = stack.enter_context(fresh_redis_db())
        moto_port, bucket = stack.enter_context(moto_server(run_id))
        stack.callback(cluster.down)
        say(
            f"-- database {database}, Redis db {redis_db}, bucket s3://{bucket} "
            f"(moto on 127.0.0.1:{moto_port})"
        )
        keys = cluster.write_secret(rendered, database)
        plan = k8s_play.Plan(
            images={API_IMAGE: args.api_image, WORKER_IMAGE: args.worker_image},
            api_ports=ports,
            keys_dir=str(keys),
            redis_db=redis_db,
            bucket_env={
                "DIGITS_VERSIONS_URL": f"s3://{bucket}/versions",
                "AWS_ENDPOINT_URL_S3": f"http://{k8s_play.HOST_FROM_POD}:{moto_port}",
                "AWS_DEFAULT_REGION": REGION,
            },
            run_id=run_id,
        )
        played, notes = k8s_play.substitute(rendered, plan)
        say("-- substituted (what podman kube play cannot do as a cluster would):")
        for note in notes:
            say(f"   - {note}")
        deployments = [d for d in played if k8s_play.kind_of(d) == "Deployment"]
        cluster.api = {
            container_of(d): f"http://127.0.0.1:{port}"
            for d, port in zip(
                [d for d in deployments if k8s_play.component(d) == "api"], ports, strict=True
            )
        }
        cluster.worker = next(
            container_of(d) for d in deployments if k8s_play.component(d) == "worker"
        )
        took = cluster.play(played, "play")
        report.figure("podman kube play (create and start every pod)", f"{took:.1f} s")
        check_images(cluster, {c: args.api_image for c in cluster.api}, args.worker_image)
        say("-- readiness")
        wait_ready(cluster)
        wait_worker(cluster)
        say("-- predictions")
        check_predictions(cluster)
        say("-- a training job through the bucket")
        pods = [*cluster.api, cluster.worker]
        version = check_job(cluster, moto_port, bucket)
        figures_rss(cluster, pods)
        if not args.no_scale_up:
            scale_up(cluster, played, version)
            figures_rss(cluster, list(cluster.api))
    say("\n" + report.table())
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--api-image", required=True)
    parser.add_argument("--worker-image", required=True)
    parser.add_argument("--work", required=True, help="a folder for the played files")
    parser.add_argument("--no-scale-up", action="store_true", help="skip the third API pod")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        return run(args)
    except SmokeFailure as failure:
        say(f"\nk8s smoke: FAILED: {failure}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
