"""The rendered manifests of ``deploy/k8s/overlays/scaled``, changed only where podman 4.3's
``podman kube play`` cannot run them as a cluster would (``deploy/k8s_smoke.py`` runs it).

``substitute(docs, plan)`` returns the documents to play and one line per change, each with
its reason (printed by the smoke and recorded in docs/deployment.md, "Run for real here").
Everything else (commands, ConfigMap values, probes, security contexts, resources, the
``secretKeyRef`` variables) is played as rendered. Pure: no podman, no I/O.
"""

from __future__ import annotations

import base64
import copy
import json
from dataclasses import dataclass
from typing import Any

#: The host's loopback as slirp4netns shows it to a pod (allow_host_loopback).
HOST_FROM_POD = "10.0.2.2"
#: Kinds podman kube play has no controller for (HPA, PDB) or that this run replaces
#: (Services: each API pod is reached on a host port of its own; ExternalName: hostAliases;
#: the ReadWriteMany claim: the bucket, with a per-pod emptyDir as cache).
DROPPED_KINDS = {
    "HorizontalPodAutoscaler": "no autoscaler in podman; the smoke runs the HPA's minimum, "
    "2 API pods",
    "PodDisruptionBudget": "no eviction API in podman",
    "PersistentVolumeClaim": "the versions live in the bucket (DIGITS_VERSIONS_URL); each "
    "pod's DIGITS_VERSIONS_DIR is an emptyDir cache, so nothing but the bucket can carry a "
    "version from the worker to an API pod",
}
API_COMPONENT = "api"
SECRET_VOLUME_NOTE = (
    "podman 4.3.1 reads a Secret two incompatible ways (secretKeyRef: a JSON map of base64 "
    "values; a secret volume: a Secret object), so the Secret is a podman secret of the first "
    "form and its volume a hostPath folder holding the same key file (owner uid 10001, the "
    "volume's defaultMode; podman has no fsGroup)"
)


@dataclass(frozen=True)
class Plan:
    """What this run puts in place of the cluster's parts."""

    #: The image each rendered image name is played with (the images deploy/smoke.sh builds).
    images: dict[str, str]
    #: One host port (on 127.0.0.1) per API pod; its length is the number of API pods.
    api_ports: tuple[int, ...]
    #: The host folder holding the Secret volume's files.
    keys_dir: str
    redis_db: int
    #: Added to the ConfigMap: DIGITS_VERSIONS_URL, AWS_ENDPOINT_URL_S3, AWS_DEFAULT_REGION.
    bucket_env: dict[str, str]
    #: Prefix of the emptyDir volume names (podman 4.3 names them after the volume alone).
    run_id: str
    #: Secret keys read by every container as these variables (the bucket's credentials).
    secret_env: tuple[tuple[str, str], ...] = (
        ("AWS_ACCESS_KEY_ID", "aws_access_key_id"),
        ("AWS_SECRET_ACCESS_KEY", "aws_secret_access_key"),
    )


class PlayError(ValueError):
    """The rendered manifests lack what the substitution expects (they changed)."""


def kind_of(doc: dict[str, Any]) -> str:
    return str(doc.get("kind", ""))


def name_of(doc: dict[str, Any]) -> str:
    return str(doc.get("metadata", {}).get("name", ""))


def component(doc: dict[str, Any]) -> str:
    return str(doc.get("metadata", {}).get("labels", {}).get("app.kubernetes.io/component", ""))


def substitute(docs: list[dict[str, Any]], plan: Plan) -> tuple[list[dict[str, Any]], list[str]]:
    """The documents podman plays, and what was changed and why."""
    notes: list[str] = []
    external = [
        d for d in docs if kind_of(d) == "Service" and d["spec"].get("type") == "ExternalName"
    ]
    aliases = [name_of(d) for d in external]
    if not aliases:
        raise PlayError("no ExternalName Service in the rendered manifests")
    notes.append(
        f"Services dropped: ExternalName {', '.join(aliases)} became a hostAliases entry "
        f"({HOST_FROM_POD}, the host through slirp4netns) in every pod; the ClusterIP "
        "Service: each API pod is reached on a 127.0.0.1 host port of its own (podman has no "
        "Service proxy)"
    )
    out: list[dict[str, Any]] = []
    for doc in docs:
        kind = kind_of(doc)
        if kind in DROPPED_KINDS:
            notes.append(f"{kind} {name_of(doc)} dropped: {DROPPED_KINDS[kind]}")
        elif kind == "Service":
            continue
        elif kind == "ConfigMap":
            out.append(_config_map(doc, plan, notes))
        elif kind == "Deployment":
            out.extend(_deployments(doc, plan, aliases, notes))
        else:
            raise PlayError(f"unexpected {kind} {name_of(doc)}: decide how podman plays it")
    notes.append(f"secret volume -> hostPath {plan.keys_dir}: {SECRET_VOLUME_NOTE}")
    notes.append(
        "emptyDir volumes renamed <deployment>-<volume>-<run>: podman 4.3.1 names an emptyDir "
        "volume after the pod spec's volume name alone, so pods would share `tmp`, `versions`"
    )
    notes.append(
        "images "
        + ", ".join(f"{rendered} -> {played}" for rendered, played in sorted(plan.images.items()))
        + " (the images deploy/smoke.sh builds)"
    )
    return out, notes


def _config_map(doc: dict[str, Any], plan: Plan, notes: list[str]) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    data: dict[str, str] = doc.setdefault("data", {})
    broker = data.get("DIGITS_CELERY_BROKER_URL", "")
    if not broker.endswith("/0"):
        raise PlayError(f"DIGITS_CELERY_BROKER_URL is {broker!r}, expected redis://.../0")
    data["DIGITS_CELERY_BROKER_URL"] = f"{broker[:-2]}/{plan.redis_db}"
    data.update(plan.bucket_env)
    notes.append(
        f"ConfigMap: broker db /0 -> /{plan.redis_db} (a free db of the host's Redis); added "
        f"{', '.join(sorted(plan.bucket_env))} (the bucket: moto_server on the host)"
    )
    return doc


def _deployments(
    doc: dict[str, Any], plan: Plan, aliases: list[str], notes: list[str]
) -> list[dict[str, Any]]:
    """The API Deployment becomes one Deployment per port of ``plan.api_ports``."""
    if component(doc) != API_COMPONENT:
        return [_pod_spec(copy.deepcopy(doc), plan, aliases, None)]
    replicas = int(doc["spec"].get("replicas", 1))
    if replicas != len(plan.api_ports):
        raise PlayError(f"the API Deployment has {replicas} replicas, the plan {plan.api_ports}")
    notes.append(
        f"Deployment {name_of(doc)} (replicas {replicas}) -> {replicas} Deployments "
        f"{name_of(doc)}-0..{replicas - 1} of 1 replica, each publishing the http port on "
        "127.0.0.1:<free port> (podman 4.3.1 plays replicas as pods that would all claim the "
        "same host port)"
    )
    copies = []
    for index, port in enumerate(plan.api_ports):
        one = copy.deepcopy(doc)
        one["metadata"]["name"] = f"{name_of(doc)}-{index}"
        one["spec"]["replicas"] = 1
        copies.append(_pod_spec(one, plan, aliases, port))
    return copies


def _pod_spec(
    doc: dict[str, Any], plan: Plan, aliases: list[str], port: int | None
) -> dict[str, Any]:
    pod = doc["spec"]["template"]["spec"]
    pod["hostAliases"] = [{"ip": HOST_FROM_POD, "hostnames": aliases}]
    renamed = {}
    for volume in pod.get("volumes", []):
        old = volume["name"]
        if "persistentVolumeClaim" in volume:
            del volume["persistentVolumeClaim"]
            volume["emptyDir"] = {}
        if volume.get("emptyDir") is None and "emptyDir" in volume:
            del volume["emptyDir"]
        if "secret" in volume:
            del volume["secret"]
            volume["hostPath"] = {"path": plan.keys_dir, "type": "Directory"}
        if "emptyDir" in volume:
            volume["name"] = renamed[old] = f"{name_of(doc)}-{old}-{plan.run_id}"
    for container in pod["containers"]:
        image = str(container.get("image", ""))
        if image not in plan.images:
            raise PlayError(f"{name_of(doc)}: image {image!r} is not one the plan plays")
        container["image"] = plan.images[image]
        for mount in container.get("volumeMounts", []):
            mount["name"] = renamed.get(mount["name"], mount["name"])
        secret = _secret_name(container)
        env = container.setdefault("env", [])
        for variable, key in plan.secret_env:
            env.append(
                {"name": variable, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
            )
        if port is not None:
            http = [p for p in container.get("ports", []) if p.get("name") == "http"]
            if not http:
                raise PlayError(f"{name_of(doc)}: no port named http")
            http[0]["hostPort"] = port
            http[0]["hostIP"] = "127.0.0.1"
    return doc


def _secret_name(container: dict[str, Any]) -> str:
    for variable in container.get("env", []):
        ref = variable.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            return str(ref["name"])
    raise PlayError(f"container {container.get('name')} reads no Secret")


def emptydir_volumes(docs: list[dict[str, Any]]) -> list[str]:
    """The podman volume names the played emptyDirs get (removed afterwards)."""
    return [
        volume["name"]
        for doc in docs
        if kind_of(doc) == "Deployment"
        for volume in doc["spec"]["template"]["spec"].get("volumes", [])
        if "emptyDir" in volume
    ]


def secret_payload(values: dict[str, str]) -> bytes:
    """A podman secret in the form podman 4.3.1's ``secretKeyRef`` reads: a JSON object of
    base64-encoded values."""
    return json.dumps(
        {key: base64.b64encode(value.encode()).decode() for key, value in values.items()}
    ).encode()


def api_probe(doc: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """The API container's readiness probe: its path and headers."""
    container = doc["spec"]["template"]["spec"]["containers"][0]
    probe = container["readinessProbe"]["httpGet"]
    headers = {h["name"]: h["value"] for h in probe.get("httpHeaders", [])}
    return str(probe["path"]), headers


def admin_key_file(doc: dict[str, Any]) -> tuple[str, str]:
    """Where the API reads its admin key (DIGITS_ADMIN_API_KEY_FILE) and that file's path
    inside the Secret volume (its ``items`` path), checked to agree with the mount."""
    pod = doc["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {v["name"]: v.get("value") for v in container.get("env", [])}
    target = str(env.get("DIGITS_ADMIN_API_KEY_FILE") or "")
    for volume in pod["volumes"]:
        if "secret" not in volume:
            continue
        mount = next(m for m in container["volumeMounts"] if m["name"] == volume["name"])
        for item in volume["secret"].get("items", []):
            if f"{mount['mountPath'].rstrip('/')}/{item['path']}" == target:
                return target, str(item["path"])
    raise PlayError(f"DIGITS_ADMIN_API_KEY_FILE={target!r} is no file of the Secret volume")
