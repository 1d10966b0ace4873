"""Offline checks of the Kubernetes manifests under deploy/k8s (no cluster needed).

Each kustomization (``overlays/embedded``, ``overlays/scaled`` and ``deploy/k8s`` itself) is
rendered with ``kubectl kustomize``; every document is validated with ``kubernetes-validate``
against the Kubernetes API schemas of ``K8S_VERSION``, strictly (an unknown field is an
error). Then what a schema cannot say:

- every container: non-root as the image's user, read-only root filesystem, no privilege
  escalation, every capability dropped, the runtime's seccomp profile; every pod: no service
  account token, no service links (they would put ``DIGITS_PORT`` etc. into the environment);
- every ``DIGITS_*`` variable (``env`` and the ConfigMaps read with ``envFrom``) is a field of
  ``service.settings.Settings``, and the values given are valid for it;
- what the service writes (``/tmp``, ``DIGITS_VERSIONS_DIR``, a SQLite job store,
  ``MPLCONFIGDIR``) lies on a volume;
- the API: compose's ``api`` command; probes on ``/health/ready``, ``/health/live`` (and a
  startup probe) sending a ``Host`` that ``DIGITS_ALLOWED_HOSTS`` admits; the Secret's key
  file mounted where ``DIGITS_ADMIN_API_KEY_FILE`` points; a preStop hook;
- the images: a Celery worker runs ``digits-serve-worker`` (torch); an API pod runs
  ``digits-serve-api`` (no torch) when its jobs go to Celery workers, and the worker image
  when it runs them itself (``DIGITS_JOB_BACKEND=local``: a worker process imports torch);
  the KServe predictor (it serves only) runs the API image;
- the scaled shape: the HPA scales the API Deployment, the PodDisruptionBudget selects the
  API pods (not the workers), the worker runs compose's ``worker`` command, and API and
  workers share one ReadWriteMany versions volume.

The KServe ``InferenceService`` (a custom resource: no schema here) is parsed, its required
fields asserted, and its predictor's pod spec validated strictly as a Pod's, with the same
container checks.

Usage: ``python deploy/check_k8s.py``; exit status 1 on a problem, 2 without ``kubectl``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml
from pydantic import ValidationError

from service.http.browser import HostCheck
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
#: The Kubernetes release the manifests are validated against: the oldest they are meant for.
K8S_VERSION = "1.30.0"
#: What ``kubectl kustomize`` renders: the two shapes, and deploy/k8s (the scaled one).
KUSTOMIZATIONS = {
    "embedded": K8S / "overlays" / "embedded",
    "scaled": K8S / "overlays" / "scaled",
    "default": K8S,
}
KSERVE = K8S / "kserve" / "inferenceservice.yaml"
#: How the API's command starts (compose's `api` command, checked whole below).
PY_SERVICE = ["python", "-m", "service"]
#: How a Celery worker's command starts (compose's `worker` command).
CELERY_WORKER = ["celery", "-A", "service.jobs.celery_app", "worker"]
#: The two images (the Dockerfile's targets `api`, no torch, and `worker`, torch).
API_IMAGE, WORKER_IMAGE = "digits-serve-api", "digits-serve-worker"
#: The image's user (Dockerfile: APP_UID).
APP_UID = 10001
#: Container securityContext fields and the values every container must set itself.
SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": APP_UID,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
#: PredictorSpec fields that are KServe's own (ComponentExtensionSpec), not a PodSpec's.
KSERVE_EXTENSION_FIELDS = {
    "minReplicas",
    "maxReplicas",
    "scaleTarget",
    "scaleMetric",
    "containerConcurrency",
    "timeout",
    "canaryTrafficPercent",
    "logger",
    "batcher",
    "labels",
    "annotations",
    "deploymentStrategy",
}


class KubectlMissing(RuntimeError):
    """``kubectl`` is not on PATH: nothing can be rendered."""


def render(path: Path) -> list[dict[str, Any]]:
    """The documents ``kubectl kustomize path`` renders."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise KubectlMissing("kubectl is not on PATH (it renders the kustomizations)")
    done = subprocess.run(
        [kubectl, "kustomize", str(path)], capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {path} failed:\n{done.stderr}")
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def compose_commands() -> dict[str, list[str]]:
    """The ``api`` and ``worker`` commands of docker-compose.yml."""
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    return {name: services[name]["command"] for name in ("api", "worker")}


def name_of(doc: dict[str, Any]) -> str:
    return f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"


def schema_problems(docs: list[dict[str, Any]], version: str = K8S_VERSION) -> list[str]:
    """Each document against the Kubernetes schemas of ``version``, unknown fields refused."""
    found = []
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = "/".join(str(p) for p in exc.path)
            found.append(f"{name_of(doc)}: {path}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError:
            found.append(f"{name_of(doc)}: no schema for {doc.get('apiVersion')} in {version}")
    return found


def pod_specs(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(name, pod spec)`` of every workload."""
    for doc in docs:
        if doc.get("kind") in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield name_of(doc), doc["spec"]["template"]["spec"]
        elif doc.get("kind") == "Pod":
            yield name_of(doc), doc["spec"]


def security_problems(name: str, pod: dict[str, Any]) -> list[str]:
    """Every container locked down (``SECURITY``); no token, no service links."""
    found = []
    if pod.get("automountServiceAccountToken") is not False:
        found.append(f"{name}: automountServiceAccountToken should be false")
    if pod.get("enableServiceLinks") is not False:
        found.append(f"{name}: enableServiceLinks should be false (DIGITS_PORT=tcp://...)")
    for container in pod.get("initContainers", []) + pod["containers"]:
        context = container.get("securityContext", {})
        for key, value in SECURITY.items():
            if context.get(key) != value:
                found.append(
                    f"{name}: container {container['name']}: securityContext.{key} "
                    f"should be {value}, got {context.get(key)}"
                )
    return found


def config_maps(docs: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    return {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}


def environment(container: dict[str, Any], maps: dict[str, dict[str, str]]) -> dict[str, Any]:
    """The container's variables: ``envFrom`` ConfigMaps, then ``env`` (which wins). A
    variable from a Secret is its ``valueFrom``; a missing ConfigMap is ``{"missing": name}``."""
    env: dict[str, Any] = {}
    for source in container.get("envFrom", []):
        ref = source.get("configMapRef", {}).get("name")
        env.update(maps.get(ref, {"__missing__": ref}) if ref else {})
    for item in container.get("env", []):
        env[item["name"]] = item.get("value", item.get("valueFrom"))
    return env


def settings_problems(name: str, env: dict[str, Any]) -> list[str]:
    """Every ``DIGITS_*`` variable is a setting, and its literal value a valid one."""
    if "__missing__" in env:
        return [f"{name}: envFrom names ConfigMap {env['__missing__']}, which is not rendered"]
    fields = set(Settings.model_fields)
    found = []
    values: dict[str, str] = {}
    for key, value in env.items():
        if not key.startswith("DIGITS_"):
            continue
        field = key[len("DIGITS_") :].lower()
        if field not in fields:
            found.append(f"{name}: {key} is not a setting (see service/settings.py)")
        elif isinstance(value, str) and not field.endswith("_file"):  # files: in the pod
            values[field] = value
    try:
        Settings.model_validate(values)  # these values only: no environment, no .env
    except ValidationError as exc:
        found.append(f"{name}: invalid settings: {exc}")
    return found


def mounted(path: str, container: dict[str, Any]) -> bool:
    """Whether ``path`` lies on one of the container's volume mounts."""
    return any(
        path == m["mountPath"] or path.startswith(m["mountPath"].rstrip("/") + "/")
        for m in container.get("volumeMounts", [])
    )


def writable_problems(name: str, container: dict[str, Any], env: dict[str, Any]) -> list[str]:
    """What the service writes lies on a volume (the root filesystem is read-only)."""
    wanted = {"/tmp": "temporary files", "/versions": "default DIGITS_VERSIONS_DIR"}
    if isinstance(env.get("DIGITS_VERSIONS_DIR"), str):
        wanted[env["DIGITS_VERSIONS_DIR"]] = "DIGITS_VERSIONS_DIR"
    if isinstance(env.get("MPLCONFIGDIR"), str):
        wanted[env["MPLCONFIGDIR"]] = "MPLCONFIGDIR"
    else:
        wanted["/app/.config"] = "matplotlib's config folder (set MPLCONFIGDIR)"
    database = env.get("DIGITS_DATABASE_URL", Settings.model_fields["database_url"].default)
    if isinstance(database, str) and database.startswith("sqlite:///"):
        file = database.removeprefix("sqlite:///")
        wanted[str(Path("/app") / file)] = "the SQLite job store"  # relative: to WORKDIR /app
    return [
        f"{name}: container {container['name']}: {path} ({why}) is not on a volume"
        for path, why in wanted.items()
        if not mounted(path, container)
    ]


def container_problems(docs: list[dict[str, Any]]) -> list[str]:
    """Security, settings and writable paths of every container of every workload."""
    maps = config_maps(docs)
    found = []
    for name, pod in pod_specs(docs):
        found += security_problems(name, pod)
        for container in pod["containers"]:
            env = environment(container, maps)
            found += settings_problems(name, env)
            found += writable_problems(name, container, env)
    return found


def probe_problems(name: str, container: dict[str, Any], hosts: HostCheck) -> list[str]:
    """Readiness on ``/health/ready``, liveness and startup on ``/health/live``, each sending
    a ``Host`` the service answers (the kubelet's default, the pod IP, is refused)."""
    found = []
    for probe, path in (
        ("readinessProbe", "/health/ready"),
        ("livenessProbe", "/health/live"),
        ("startupProbe", "/health/live"),
    ):
        get = container.get(probe, {}).get("httpGet")
        if get is None or get.get("path") != path:
            found.append(f"{name}: {probe} should be an httpGet of {path}")
            continue
        host = {h["name"].lower(): h["value"] for h in get.get("httpHeaders", [])}.get("host")
        if not hosts.allows(host.encode() if host else b"10.0.0.1"):
            found.append(f"{name}: {probe} sends Host {host or '(the pod IP)'}: refused 400")
    return found


def key_file_problems(name: str, pod: dict[str, Any], container: dict[str, Any]) -> list[str]:
    """``DIGITS_ADMIN_API_KEY_FILE`` is the path of the Secret's ``admin_api_key``."""
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    want = env.get("DIGITS_ADMIN_API_KEY_FILE")
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for mount in container.get("volumeMounts", []):
        secret = volumes.get(mount["name"], {}).get("secret")
        if secret is None:
            continue
        for item in secret.get("items", [{"key": "admin_api_key", "path": "admin_api_key"}]):
            if item["key"] == "admin_api_key" and f"{mount['mountPath']}/{item['path']}" == want:
                return []
    return [f"{name}: DIGITS_ADMIN_API_KEY_FILE={want} is not where a Secret's key is mounted"]


def api_container(pod: dict[str, Any]) -> dict[str, Any] | None:
    """The container running the API (``python -m service``), if the pod has one."""
    return next((c for c in pod["containers"] if c.get("command", [])[:3] == PY_SERVICE), None)


def api_problems(docs: list[dict[str, Any]]) -> list[str]:
    """The API Deployment: compose's command, probes, the key file, a preStop hook."""
    maps = config_maps(docs)
    apis = [(n, p) for n, p in pod_specs(docs) if api_container(p) is not None]
    if len(apis) != 1:
        return [f"expected one API workload, found {[n for n, _ in apis]}"]
    name, pod = apis[0]
    container = api_container(pod)
    assert container is not None
    found = []
    if container["command"] != compose_commands()["api"]:
        found.append(f"{name}: command {container['command']} is not compose's api command")
    allowed = environment(container, maps).get("DIGITS_ALLOWED_HOSTS")
    found += probe_problems(name, container, HostCheck(str(allowed or "*").split(",")))
    found += key_file_problems(name, pod, container)
    if "preStop" not in container.get("lifecycle", {}):
        found.append(f"{name}: no preStop hook (requests would reach a pod that stopped)")
    return found


def image_name(image: str) -> str:
    """The image's name without registry, tag or digest: ``r.io:5000/x/n:t`` -> ``n``."""
    return image.rsplit("/", 1)[-1].split("@", 1)[0].split(":", 1)[0]


def wanted_image(container: dict[str, Any], env: dict[str, Any]) -> str | None:
    """The image a container needs: the worker's to run jobs (torch), else the API's."""
    command = container.get("command", [])
    if command[: len(CELERY_WORKER)] == CELERY_WORKER:
        return WORKER_IMAGE
    if command[: len(PY_SERVICE)] == PY_SERVICE:
        local = env.get("DIGITS_JOB_BACKEND", Settings.model_fields["job_backend"].default)
        return WORKER_IMAGE if local == "local" else API_IMAGE
    return None


def image_problems(docs: list[dict[str, Any]]) -> list[str]:
    """Celery workers and API pods that run jobs themselves: the worker image; other API
    pods: the API image (no torch)."""
    maps = config_maps(docs)
    found = []
    for name, pod in pod_specs(docs):
        for container in pod["containers"]:
            want = wanted_image(container, environment(container, maps))
            got = image_name(str(container.get("image", "")))
            if want is not None and got != want:
                found.append(f"{name}: container {container['name']} runs {got}, needs {want}")
    return found


def workload(docs: list[dict[str, Any]], component: str) -> dict[str, Any] | None:
    """The Deployment labelled ``app.kubernetes.io/component: component``."""
    return next(
        (
            d
            for d in docs
            if d["kind"] == "Deployment"
            and d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component
        ),
        None,
    )


def selects(selector: dict[str, str], deployment: dict[str, Any] | None) -> bool:
    labels = (deployment or {}).get("spec", {}).get("template", {}).get("metadata", {})
    return bool(selector) and selector.items() <= labels.get("labels", {}).items()


def scaled_problems(docs: list[dict[str, Any]]) -> list[str]:
    """HPA on the API, PDB over the API pods only, compose's worker, one RWX volume."""
    api, worker = workload(docs, "api"), workload(docs, "worker")
    if api is None or worker is None:
        return ["the scaled shape needs an API and a worker Deployment"]
    found = []
    kinds = {d["kind"]: d for d in docs}
    target = kinds.get("HorizontalPodAutoscaler", {}).get("spec", {}).get("scaleTargetRef", {})
    if (target.get("kind"), target.get("name")) != ("Deployment", api["metadata"]["name"]):
        found.append(f"the HPA scales {target}, not the API Deployment")
    pdb = kinds.get("PodDisruptionBudget", {}).get("spec", {})
    chosen = pdb.get("selector", {}).get("matchLabels", {})
    if not selects(chosen, api) or selects(chosen, worker):
        found.append(f"the PodDisruptionBudget selects {chosen}: not the API pods alone")
    worker_container = worker["spec"]["template"]["spec"]["containers"][0]
    if worker_container["command"] != compose_commands()["worker"]:
        found.append(f"worker: command {worker_container['command']} is not compose's")
    claims = {versions_claim(d) for d in (api, worker)}
    pvcs = {d["metadata"]["name"]: d for d in docs if d["kind"] == "PersistentVolumeClaim"}
    modes = [pvcs.get(c or "", {}).get("spec", {}).get("accessModes") for c in claims]
    if len(claims) != 1 or modes != [["ReadWriteMany"]]:
        found.append(f"API and worker should share one ReadWriteMany /versions: {claims} {modes}")
    return found


def versions_claim(deployment: dict[str, Any]) -> str | None:
    """The PersistentVolumeClaim mounted at /versions in the Deployment's first container."""
    pod = deployment["spec"]["template"]["spec"]
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["mountPath"] == "/versions")
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    claim: str | None = volume.get("persistentVolumeClaim", {}).get("claimName")
    return claim


def kserve_problems(doc: dict[str, Any]) -> list[str]:
    """The InferenceService's required fields; its predictor validated as a Pod's spec."""
    found = []
    if (doc.get("apiVersion"), doc.get("kind")) != (
        "serving.kserve.io/v1beta1",
        "InferenceService",
    ):
        found.append(f"{KSERVE.name}: not a serving.kserve.io/v1beta1 InferenceService")
    predictor = doc.get("spec", {}).get("predictor", {})
    containers = predictor.get("containers", [])
    if not doc.get("metadata", {}).get("name") or len(containers) != 1:
        return [*found, f"{KSERVE.name}: needs metadata.name and one predictor container"]
    container = containers[0]
    if container.get("name") != "kserve-container" or not container.get("image"):
        found.append(f"{KSERVE.name}: the container must be kserve-container, with an image")
    ports = [p["containerPort"] for p in container.get("ports", [])]
    command = container.get("command", [])
    if len(ports) != 1 or command[command.index("--port") + 1 :][:1] != [str(ports[0])]:
        found.append(f"{KSERVE.name}: one containerPort, the one --port names: {ports}")
    spec = {k: v for k, v in predictor.items() if k not in KSERVE_EXTENSION_FIELDS}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": doc["metadata"], "spec": spec}
    found += schema_problems([pod]) + container_problems([pod])
    found += probe_problems(name_of(doc), container, kserve_hosts(container))
    if image_name(str(container.get("image", ""))) != API_IMAGE:
        found.append(f"{KSERVE.name}: the predictor serves only: the API image {API_IMAGE}")
    return found


def kserve_hosts(container: dict[str, Any]) -> HostCheck:
    env = environment(container, {})
    return HostCheck(str(env.get("DIGITS_ALLOWED_HOSTS") or "*").split(","))


def problems(shape: str, docs: list[dict[str, Any]]) -> list[str]:
    """Every problem of one rendered kustomization (empty when it is fine)."""
    found = schema_problems(docs) + container_problems(docs) + api_problems(docs)
    found += image_problems(docs)
    if shape != "embedded":
        found += scaled_problems(docs)
    return found


def main(argv: list[str] | None = None) -> int:
    del argv
    found: list[str] = []
    try:
        for shape, path in KUSTOMIZATIONS.items():
            docs = render(path)
            found += [f"{path.relative_to(ROOT)}: {p}" for p in problems(shape, docs)]
            sys.stdout.write(f"{path.relative_to(ROOT)}: {len(docs)} documents checked\n")
    except KubectlMissing as exc:
        sys.stderr.write(f"deploy/check_k8s.py: {exc}\n")
        return 2
    found += kserve_problems(yaml.safe_load(KSERVE.read_text()))
    for problem in found:
        sys.stderr.write(f"{problem}\n")
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
