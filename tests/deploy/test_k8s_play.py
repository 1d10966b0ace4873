"""What ``make k8s-test`` changes in the rendered manifests before ``podman kube play``
(deploy/k8s_play.py), checked on the real rendering so the substitution cannot drift from the
manifests: everything not listed in docs/deployment.md ("Run for real here") is played as
rendered, and a manifest change the substitution does not know stops it."""

from __future__ import annotations

import base64
import copy
import json
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from tests.deploy.common import ROOT, load_deploy_script

pytestmark = pytest.mark.skipif(
    shutil.which("kubectl") is None, reason="kubectl is not on PATH (it renders the manifests)"
)


play = load_deploy_script("k8s_play", register=True)
PLAN = play.Plan(
    images={
        "digits-serve-api:latest": "localhost/digits-serve-api:smoke",
        "digits-serve-worker:latest": "localhost/digits-serve-worker:smoke",
    },
    api_ports=(40001, 40002),
    keys_dir="/var/tmp/keys",
    redis_db=7,
    bucket_env={"DIGITS_VERSIONS_URL": "s3://b/versions", "AWS_ENDPOINT_URL_S3": "http://x"},
    run_id="r1",
)


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    done = subprocess.run(
        ["kubectl", "kustomize", str(ROOT / "deploy" / "k8s" / "overlays" / "scaled")],
        capture_output=True,
        text=True,
        check=True,
    )
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def deployments(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {play.name_of(d): d for d in docs if play.kind_of(d) == "Deployment"}


def pod(doc: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = doc["spec"]["template"]["spec"]
    return spec


def test_only_what_podman_plays_is_left(rendered: list[dict[str, Any]]) -> None:
    played, notes = play.substitute(rendered, PLAN)
    assert sorted(play.kind_of(d) for d in played) == ["ConfigMap", *["Deployment"] * 3]
    assert set(deployments(played)) == {
        "digits-serve-api-0",
        "digits-serve-api-1",
        "digits-serve-worker",
    }
    for kind in ("HorizontalPodAutoscaler", "PodDisruptionBudget", "PersistentVolumeClaim"):
        assert any(note.startswith(kind) for note in notes), kind


def test_api_pods_get_a_host_port_each(rendered: list[dict[str, Any]]) -> None:
    played, _ = play.substitute(rendered, PLAN)
    ports = []
    for name, doc in deployments(played).items():
        assert doc["spec"]["replicas"] == 1
        for container in pod(doc)["containers"]:
            for port in container.get("ports", []):
                if "hostPort" in port:
                    assert port["hostIP"] == "127.0.0.1"
                    ports.append((name, port["hostPort"], port["containerPort"]))
    assert ports == [("digits-serve-api-0", 40001, 8000), ("digits-serve-api-1", 40002, 8000)]


def test_external_names_resolve_to_the_host(rendered: list[dict[str, Any]]) -> None:
    """Every host name the URLs use (the ExternalName Services) reaches the host's loopback."""
    external = {
        play.name_of(d)
        for d in rendered
        if play.kind_of(d) == "Service" and d["spec"].get("type") == "ExternalName"
    }
    played, _ = play.substitute(rendered, PLAN)
    config = next(d for d in played if play.kind_of(d) == "ConfigMap")["data"]
    assert config["DIGITS_CELERY_BROKER_URL"] == "redis://digits-redis:6379/7"
    assert config["DIGITS_VERSIONS_URL"] == "s3://b/versions"
    assert "digits-redis" in external
    for doc in deployments(played).values():
        assert pod(doc)["hostAliases"] == [{"ip": "10.0.2.2", "hostnames": sorted(external)}]


def test_volumes_are_per_pod_and_the_secret_a_host_folder(rendered: list[dict[str, Any]]) -> None:
    """podman 4.3.1 names an emptyDir volume after its spec name alone: unrenamed, the API pods
    and the worker would share /versions and the bucket would prove nothing."""
    played, _ = play.substitute(rendered, PLAN)
    names = play.emptydir_volumes(played)
    assert len(names) == len(set(names)) == 8
    for doc in deployments(played).values():
        volumes = {v["name"]: v for v in pod(doc)["volumes"]}
        assert not any("persistentVolumeClaim" in v or "secret" in v for v in volumes.values())
        for container in pod(doc)["containers"]:
            for mount in container["volumeMounts"]:
                volume = volumes[mount["name"]]
                if mount["mountPath"] == "/run/secrets":
                    assert volume["hostPath"] == {"path": "/var/tmp/keys", "type": "Directory"}
                else:
                    assert volume["emptyDir"] is not None
                    assert volume["name"].startswith(play.name_of(doc))


def test_each_pod_plays_its_own_image(rendered: list[dict[str, Any]]) -> None:
    """API pods the API image (no torch), the worker pod the worker image; an image the plan
    does not know stops the substitution."""
    played, notes = play.substitute(rendered, PLAN)
    images = {
        name: [c["image"] for c in pod(doc)["containers"]]
        for name, doc in deployments(played).items()
    }
    assert images == {
        "digits-serve-api-0": ["localhost/digits-serve-api:smoke"],
        "digits-serve-api-1": ["localhost/digits-serve-api:smoke"],
        "digits-serve-worker": ["localhost/digits-serve-worker:smoke"],
    }
    assert any(
        "digits-serve-worker:latest -> localhost/digits-serve-worker:smoke" in n for n in notes
    )
    docs = copy.deepcopy(rendered)
    pod(deployments(docs)["digits-serve-worker"])["containers"][0]["image"] = "other:1"
    with pytest.raises(play.PlayError, match="other:1"):
        play.substitute(docs, PLAN)


def test_the_rest_is_played_as_rendered(rendered: list[dict[str, Any]]) -> None:
    """Commands, probes, security contexts, resources, envFrom and mount paths: unchanged;
    env only gains the bucket's credentials from the Secret."""
    played, _ = play.substitute(rendered, PLAN)
    before = deployments(rendered)
    for name, doc in deployments(played).items():
        original = before[name.rsplit("-", 1)[0] if name[-1].isdigit() else name]
        for old, new in zip(pod(original)["containers"], pod(doc)["containers"], strict=True):
            new = copy.deepcopy(new)
            assert new.pop("image") == PLAN.images[old["image"]]
            added = new["env"][len(old["env"]) :]
            new["env"] = new["env"][: len(old["env"])]
            assert [(v["name"], v["valueFrom"]["secretKeyRef"]["key"]) for v in added] == [
                ("AWS_ACCESS_KEY_ID", "aws_access_key_id"),
                ("AWS_SECRET_ACCESS_KEY", "aws_secret_access_key"),
            ]
            for port in new.get("ports", []):
                port.pop("hostPort", None)
                port.pop("hostIP", None)
            for mount in new.get("volumeMounts", []):
                mount["name"] = mount["name"].removeprefix(f"{name}-").removesuffix("-r1")
            assert new == {k: v for k, v in old.items() if k != "image"}
        for field in ("securityContext", "automountServiceAccountToken", "enableServiceLinks"):
            assert pod(doc)[field] == pod(original)[field]


def test_unknown_manifest_changes_stop_the_substitution(rendered: list[dict[str, Any]]) -> None:
    ingress = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "x"}}
    with pytest.raises(play.PlayError, match="Ingress"):
        play.substitute([*rendered, ingress], PLAN)
    docs = copy.deepcopy(rendered)
    config = next(d for d in docs if play.kind_of(d) == "ConfigMap")
    config["data"]["DIGITS_CELERY_BROKER_URL"] = "redis://digits-redis:6379/3"
    with pytest.raises(play.PlayError, match="expected redis"):
        play.substitute(docs, PLAN)
    with pytest.raises(play.PlayError, match="replicas"):
        play.substitute(rendered, play.Plan(**{**PLAN.__dict__, "api_ports": (1, 2, 3)}))


def test_secret_payload_and_key_file(rendered: list[dict[str, Any]]) -> None:
    """The podman secret holds base64 values (what podman 4.3.1's secretKeyRef reads); the
    admin key file is where DIGITS_ADMIN_API_KEY_FILE points."""
    payload = json.loads(play.secret_payload({"database_url": "postgresql://h/db"}))
    assert base64.b64decode(payload["database_url"]) == b"postgresql://h/db"
    api = deployments(rendered)["digits-serve-api"]
    assert play.admin_key_file(api) == ("/run/secrets/admin_api_key", "admin_api_key")
    assert play.api_probe(api) == ("/health/ready", {"Host": "localhost"})
    moved = copy.deepcopy(api)
    pod(moved)["containers"][0]["volumeMounts"][-1]["mountPath"] = "/run/keys"
    with pytest.raises(play.PlayError, match="DIGITS_ADMIN_API_KEY_FILE"):
        play.admin_key_file(moved)
