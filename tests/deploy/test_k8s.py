"""The Kubernetes manifests (deploy/k8s), checked offline: rendered with ``kubectl kustomize``,
validated strictly against the Kubernetes schemas, and held to what the service needs
(deploy/check_k8s.py). Each check is also shown to catch the fault it is for, planted in a
copy of the rendered documents. The probes are sent to the real app, as the kubelet sends
them. There is no cluster here: nothing is applied (docs/deployment.md, "Kubernetes")."""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from service.http.app import create_app
from tests.conftest import make_settings
from tests.deploy.common import ROOT, load_deploy_script

needs_kubectl = pytest.mark.skipif(
    shutil.which("kubectl") is None, reason="kubectl is not on PATH (it renders the manifests)"
)


checks = load_deploy_script("check_k8s")
Docs = list[dict[str, Any]]


@pytest.fixture(scope="module")
def rendered() -> dict[str, Docs]:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not on PATH (it renders the manifests)")
    return {shape: checks.render(path) for shape, path in checks.KUSTOMIZATIONS.items()}


def find(docs: Docs, kind: str, component: str | None = None) -> list[dict[str, Any]]:
    """The documents of ``kind`` (labelled ``app.kubernetes.io/component: component``)."""
    return [
        d
        for d in docs
        if d["kind"] == kind
        and component in (None, d["metadata"].get("labels", {}).get("app.kubernetes.io/component"))
    ]


def api_container(docs: Docs) -> dict[str, Any]:
    (api,) = find(docs, "Deployment", "api")
    container: dict[str, Any] = api["spec"]["template"]["spec"]["containers"][0]
    return container


def config(docs: Docs) -> dict[str, str]:
    (config_map,) = find(docs, "ConfigMap")
    data: dict[str, str] = config_map["data"]
    return data


@needs_kubectl
def test_every_kustomization_renders_what_its_shape_needs(rendered: dict[str, Docs]) -> None:
    """embedded: one API pod on two ReadWriteOnce claims, nothing else; scaled (and
    deploy/k8s, which renders it): API + worker, HPA, PDB, the two ExternalName Services."""
    kinds = {shape: sorted(d["kind"] for d in docs) for shape, docs in rendered.items()}
    assert kinds["embedded"] == sorted(
        ["ConfigMap", "Service", "Deployment", "PersistentVolumeClaim", "PersistentVolumeClaim"]
    )
    assert rendered["default"] == rendered["scaled"]
    scaled = rendered["scaled"]
    assert len(find(scaled, "Deployment")) == 2
    assert len(find(scaled, "HorizontalPodAutoscaler")) == len(find(scaled, "PodDisruptionBudget"))
    external = {d["metadata"]["name"]: d["spec"] for d in find(scaled, "Service")}
    assert external["digits-postgres"]["type"] == external["digits-redis"]["type"] == "ExternalName"
    assert "selector" not in external["digits-postgres"]  # an ExternalName selects no pods


@needs_kubectl
@pytest.mark.parametrize("shape", ["embedded", "scaled", "default"])
def test_every_document_passes_the_schema_and_the_project_checks(
    rendered: dict[str, Docs], shape: str
) -> None:
    """kubernetes-validate (the schemas of ``K8S_VERSION``, unknown fields refused), then
    every check of deploy/check_k8s.py."""
    assert checks.schema_problems(rendered[shape]) == []
    assert checks.problems(shape, rendered[shape]) == []


@needs_kubectl
def test_a_misspelt_field_is_refused(rendered: dict[str, Docs]) -> None:
    """Strict: a typo that Kubernetes would drop silently (the field would not apply) fails."""
    docs = copy.deepcopy(rendered["scaled"])
    context = api_container(docs)["securityContext"]
    context["readOnlyRootFilesytem"] = context.pop("readOnlyRootFilesystem")
    found = checks.schema_problems(docs)
    assert len(found) == 1
    assert "readOnlyRootFilesytem" in found[0]


@needs_kubectl
@pytest.mark.parametrize("shape", ["embedded", "scaled"])
def test_every_container_runs_locked_down(rendered: dict[str, Docs], shape: str) -> None:
    """Non-root as 10001, read-only root, no escalation, no capabilities, RuntimeDefault."""
    docs = rendered[shape]
    containers = [c for _, pod in checks.pod_specs(docs) for c in pod["containers"]]
    assert len(containers) == (1 if shape == "embedded" else 2)
    for container in containers:
        assert container["securityContext"] == {**checks.SECURITY, "runAsGroup": 10001}
    planted = copy.deepcopy(docs)
    del api_container(planted)["securityContext"]["readOnlyRootFilesystem"]
    find(planted, "Deployment")[-1]["spec"]["template"]["spec"]["enableServiceLinks"] = True
    found = checks.container_problems(planted)
    assert any("readOnlyRootFilesystem should be True" in p for p in found), found
    assert any("enableServiceLinks" in p for p in found), found


@needs_kubectl
def test_what_the_service_writes_is_on_a_volume(rendered: dict[str, Docs]) -> None:
    """/tmp, the versions folder, matplotlib's folder, and in the embedded shape the SQLite
    file, on a claim of its own."""
    embedded = rendered["embedded"]
    container = api_container(embedded)
    assert config(embedded)["DIGITS_DATABASE_URL"] == "sqlite:////app/var/jobs.db"
    assert checks.mounted("/app/var/jobs.db", container)
    volumes = {
        v["name"]: v for v in find(embedded, "Deployment")[0]["spec"]["template"]["spec"]["volumes"]
    }
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert volumes[mounts["/app/var"]]["persistentVolumeClaim"]["claimName"] == "digits-serve-var"
    planted = copy.deepcopy(embedded)
    api_container(planted)["volumeMounts"] = [
        m
        for m in api_container(planted)["volumeMounts"]
        if m["mountPath"] not in ("/tmp", "/app/var")
    ]
    found = checks.container_problems(planted)
    assert any("/tmp (temporary files) is not on a volume" in p for p in found), found
    assert any("(the SQLite job store) is not on a volume" in p for p in found), found


@needs_kubectl
@pytest.mark.parametrize("shape", ["embedded", "scaled"])
def test_every_digits_variable_is_a_setting(rendered: dict[str, Docs], shape: str) -> None:
    """env and the ConfigMap read by envFrom: real settings with valid values. A setting
    that does not exist (a misspelt name) is caught."""
    docs = rendered[shape]
    maps = checks.config_maps(docs)
    for name, pod in checks.pod_specs(docs):
        for container in pod["containers"]:
            env = checks.environment(container, maps)
            assert any(k.startswith("DIGITS_") for k in env)
            assert checks.settings_problems(name, env) == []
    planted = copy.deepcopy(docs)
    config(planted)["DIGITS_VERSION_STORE"] = "s3://bucket/versions"  # a misspelt setting
    config(planted)["DIGITS_JOB_BACKEND"] = "kubernetes"
    found = checks.container_problems(planted)
    assert any("DIGITS_VERSION_STORE is not a setting" in p for p in found), found
    assert any("job_backend" in p for p in found), found


@needs_kubectl
@pytest.mark.parametrize("shape", ["embedded", "scaled"])
def test_the_api_runs_compose_s_command_with_its_key_file(
    rendered: dict[str, Docs], shape: str
) -> None:
    """The command of docker-compose.yml's api service; DIGITS_ADMIN_API_KEY_FILE is where
    the Secret's admin_api_key is mounted (as compose's /run/secrets/admin_api_key)."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    container = api_container(rendered[shape])
    assert container["command"] == compose["services"]["api"]["command"]
    env = {e["name"]: e for e in container["env"]}
    assert env["DIGITS_ADMIN_API_KEY_FILE"]["value"] == "/run/secrets/admin_api_key"
    read_key = env["DIGITS_READ_API_KEY"]["valueFrom"]["secretKeyRef"]
    assert read_key == {"name": "digits-serve-secrets", "key": "read_api_key", "optional": True}
    assert checks.api_problems(rendered[shape]) == []
    planted = copy.deepcopy(rendered[shape])
    for mount in api_container(planted)["volumeMounts"]:
        if mount["mountPath"] == "/run/secrets":
            mount["mountPath"] = "/etc/digits"
    found = checks.api_problems(planted)
    assert found == [
        "Deployment/digits-serve-api: DIGITS_ADMIN_API_KEY_FILE=/run/secrets/admin_api_key "
        "is not where a Secret's key is mounted"
    ]


@needs_kubectl
def test_the_probes_ask_the_health_routes_with_an_allowed_host(rendered: dict[str, Docs]) -> None:
    """Readiness on /health/ready, liveness and startup on /health/live, each with a Host the
    service answers; without it the kubelet sends the pod IP, which is refused."""
    container = api_container(rendered["scaled"])
    paths = {
        p: container[p]["httpGet"]["path"]
        for p in ("readinessProbe", "livenessProbe", "startupProbe")
    }
    assert paths == {
        "readinessProbe": "/health/ready",
        "livenessProbe": "/health/live",
        "startupProbe": "/health/live",
    }
    assert (
        container["startupProbe"]["failureThreshold"] * container["startupProbe"]["periodSeconds"]
        >= 120
    )
    planted = copy.deepcopy(rendered["scaled"])
    del api_container(planted)["readinessProbe"]["httpGet"]["httpHeaders"]
    assert checks.api_problems(planted) == [
        "Deployment/digits-serve-api: readinessProbe sends Host (the pod IP): refused 400"
    ]


@needs_kubectl
def test_the_app_answers_the_probes_as_the_kubelet_sends_them(
    rendered: dict[str, Docs], models_dir: Path
) -> None:
    """The app, with the rendered DIGITS_ALLOWED_HOSTS, answers each probe's request (its
    path, its headers) 200, a client of the Service by its DNS names too; the pod IP as Host
    (the kubelet's default) and a stranger get 400."""
    container = api_container(rendered["scaled"])
    allowed = config(rendered["scaled"])["DIGITS_ALLOWED_HOSTS"]
    settings = make_settings(
        models_dir, host="0.0.0.0", allowed_hosts=allowed, admin_api_key="k" * 32
    )
    with TestClient(create_app(settings), base_url="http://10.244.1.7:8000") as client:
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            get = container[probe]["httpGet"]
            headers = {h["name"]: h["value"] for h in get["httpHeaders"]}
            assert client.get(get["path"], headers=headers).status_code == 200, probe
            refused = client.get(get["path"])  # Host: 10.244.1.7:8000, the pod IP
            assert refused.status_code == 400
            assert refused.json()["error"]["code"] == "invalid_host"
        for host in ("digits-serve:8000", "digits-serve.prod.svc.cluster.local:8000"):
            assert client.get("/health/ready", headers={"Host": host}).status_code == 200
        assert client.get("/health/ready", headers={"Host": "evil.example"}).status_code == 400


@needs_kubectl
def test_the_hpa_scales_the_api_and_the_pdb_keeps_api_pods(rendered: dict[str, Docs]) -> None:
    """The HPA's target is the API Deployment (min 2 = its replicas); the PDB's selector
    matches the API pods and not the workers'."""
    docs = rendered["scaled"]
    (api,) = find(docs, "Deployment", "api")
    (hpa,) = find(docs, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": api["metadata"]["name"],
    }
    assert hpa["spec"]["minReplicas"] == api["spec"]["replicas"] == 2
    assert checks.scaled_problems(docs) == []
    planted = copy.deepcopy(docs)
    find(planted, "HorizontalPodAutoscaler")[0]["spec"]["scaleTargetRef"]["name"] = (
        "digits-serve-worker"
    )
    find(planted, "PodDisruptionBudget")[0]["spec"]["selector"]["matchLabels"] = {
        "app.kubernetes.io/name": "digits-serve"  # the workers too
    }
    found = checks.scaled_problems(planted)
    assert len(found) == 2
    assert "HPA" in found[0]
    assert "PodDisruptionBudget" in found[1]


@needs_kubectl
def test_the_scaled_shape_shares_its_store_broker_and_versions(rendered: dict[str, Docs]) -> None:
    """API and worker: celery backend, the database URL from the Secret, the broker through
    the digits-redis ExternalName, compose's worker command, one ReadWriteMany /versions."""
    docs = rendered["scaled"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    maps = checks.config_maps(docs)
    for component in ("api", "worker"):
        (deployment,) = find(docs, "Deployment", component)
        env = checks.environment(deployment["spec"]["template"]["spec"]["containers"][0], maps)
        assert env["DIGITS_JOB_BACKEND"] == "celery"
        assert env["DIGITS_CELERY_BROKER_URL"] == "redis://digits-redis:6379/0"
        assert env["DIGITS_DATABASE_URL"] == {
            "secretKeyRef": {"name": "digits-serve-secrets", "key": "database_url"}
        }
        assert checks.versions_claim(deployment) == "digits-serve-versions"
    (worker,) = find(docs, "Deployment", "worker")
    pod = worker["spec"]["template"]["spec"]
    assert pod["containers"][0]["command"] == compose["services"]["worker"]["command"]
    assert pod["terminationGracePeriodSeconds"] == 120  # compose's stop_grace_period
    assert compose["services"]["worker"]["stop_grace_period"] == "120s"


@needs_kubectl
def test_the_embedded_shape_is_one_pod_replaced_not_rolled(rendered: dict[str, Docs]) -> None:
    """One replica, Recreate (the ReadWriteOnce claims and the SQLite file are one pod's),
    the local job runner, and a grace period that covers its 30 s wait for running jobs."""
    (api,) = find(rendered["embedded"], "Deployment")
    assert api["spec"]["replicas"] == 1
    assert api["spec"]["strategy"] == {"type": "Recreate"}
    assert "DIGITS_JOB_BACKEND" not in config(rendered["embedded"])  # the default: local
    assert api["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 5 + 10 + 30


@needs_kubectl
def test_each_pod_runs_the_image_its_work_needs(rendered: dict[str, Docs]) -> None:
    """Scaled: the API pods the API image (no torch), the Celery workers the worker image;
    embedded: the worker image (its jobs run in the pod and import torch). A Celery worker
    or an embedded API on the API image is caught, as is a scaled API on the worker image."""

    def images(docs: Docs) -> dict[str, str]:
        return {
            d["metadata"]["labels"]["app.kubernetes.io/component"]: d["spec"]["template"]["spec"][
                "containers"
            ][0]["image"]
            for d in find(docs, "Deployment")
        }

    assert images(rendered["scaled"]) == {
        "api": "digits-serve-api:latest",
        "worker": "digits-serve-worker:latest",
    }
    assert images(rendered["embedded"]) == {"api": "digits-serve-worker:latest"}
    assert checks.image_name("registry.example:5000/team/digits-serve-api:v3") == checks.API_IMAGE
    planted = copy.deepcopy(rendered["scaled"])
    api_container(planted)["image"] = "digits-serve-worker:latest"
    (worker,) = find(planted, "Deployment", "worker")
    worker["spec"]["template"]["spec"]["containers"][0]["image"] = "digits-serve-api:latest"
    found = checks.image_problems(planted)
    assert len(found) == 2, found
    assert "runs digits-serve-worker, needs digits-serve-api" in found[0]
    assert "runs digits-serve-api, needs digits-serve-worker" in found[1]
    embedded = copy.deepcopy(rendered["embedded"])
    api_container(embedded)["image"] = "digits-serve-api:latest"
    assert "needs digits-serve-worker" in checks.image_problems(embedded)[0]


def test_the_inference_service_is_a_locked_down_v2_predictor() -> None:
    """The KServe InferenceService (no kubectl needed): its required fields, its predictor
    strictly valid as a Pod's spec, the same container checks, port 8080 both in --port
    and containerPort; a mismatched port is caught."""
    doc = yaml.safe_load(checks.KSERVE.read_text())
    assert checks.kserve_problems(doc) == []
    container = doc["spec"]["predictor"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["PROTOCOL"] == "v2"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    planted = copy.deepcopy(doc)
    planted["spec"]["predictor"]["containers"][0]["ports"][0]["containerPort"] = 8000
    planted["spec"]["predictor"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = (
        False
    )
    planted["spec"]["predictor"]["containers"][0]["livenessProbe"]["httpGet"]["pathh"] = "/"
    found = checks.kserve_problems(planted)
    assert len(found) == 3, found  # scaleTarget & co, KServe's own fields, are no Pod fault
    assert "the one --port names" in found[0]
    assert "pathh" in found[1]
    assert "readOnlyRootFilesystem should be True" in found[2]


@needs_kubectl
def test_check_k8s_script_passes_on_the_repository() -> None:
    """``python deploy/check_k8s.py`` (what deploy/check.sh runs): exit 0, every kustomization."""
    done = subprocess.run(
        [sys.executable, "deploy/check_k8s.py"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("documents checked") == 3
