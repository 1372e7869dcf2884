"""deploy/k8s: each manifest against the Kubernetes OpenAPI schemas, then what the app relies on."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import dockerfile
import kubernetes_validate
import pytest
import yaml

from tests.deploy.topic_commands import created_topics

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
# The oldest Kubernetes the bundled schemas cover, and the newest.
VERSIONS = ["1.25.0", kubernetes_validate.latest_version()]


def _documents() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc is not None:
                docs.append((f"{path.name}:{doc['kind']}", doc))
    return docs


DOCUMENTS = _documents()


def _one(kind: str) -> dict[str, Any]:
    found = [doc for _, doc in DOCUMENTS if doc["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def _container() -> dict[str, Any]:
    containers = _one("Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def test_k8s_manifests_found_every_kind() -> None:
    kinds = sorted(doc["kind"] for _, doc in DOCUMENTS)
    assert kinds == ["ConfigMap", "Deployment", "Job", "Secret", "Service"]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("name", "doc"), DOCUMENTS, ids=[name for name, _ in DOCUMENTS])
def test_k8s_manifest_schema_strict_valid(name: str, doc: dict[str, Any], version: str) -> None:
    kubernetes_validate.validate(doc, version, strict=True)


@pytest.mark.parametrize(
    ("field", "value"),
    [("livenessprobe", {"httpGet": {"path": "/health", "port": 8000}}), ("resources", "1Gi")],
    ids=["misspelt-field", "wrong-type"],
)
def test_k8s_manifest_schema_damaged_deployment_rejected(field: str, value: Any) -> None:
    # The validator really checks: a typo or a wrong type in the container spec fails.
    damaged = copy.deepcopy(_one("Deployment"))
    damaged["spec"]["template"]["spec"]["containers"][0][field] = value
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(damaged, VERSIONS[-1], strict=True)


def _port(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    return next(int(p["containerPort"]) for p in container["ports"] if p.get("name") == port)


def test_k8s_deployment_probes_health_and_ready_on_port_8000() -> None:
    container = _container()
    assert [int(p["containerPort"]) for p in container["ports"]] == [8000]
    probes = {}
    for name in ("livenessProbe", "readinessProbe", "startupProbe"):
        get = container[name]["httpGet"]
        probes[name] = (get["path"], _port(container, get["port"]))
    assert probes == {
        "livenessProbe": ("/health", 8000),
        "readinessProbe": ("/ready", 8000),
        "startupProbe": ("/health", 8000),
    }


def test_k8s_deployment_secret_envfrom_and_kafka_env() -> None:
    container = _container()
    secret = _one("Secret")
    assert container["envFrom"] == [{"secretRef": {"name": secret["metadata"]["name"]}}]
    assert {"API_USERNAME", "API_PASSWORD", "ADMIN_TOKEN"} <= set(secret["stringData"])
    env = {item["name"]: item for item in container["env"]}
    assert env["KAFKA_BOOTSTRAP_SERVERS"]["value"] == "kafka:9092"
    # Faust routes table lookups to http://WEB_HOST:port: the pod IP, not an unresolvable name.
    assert env["WEB_HOST"]["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}


def test_k8s_deployment_mounts_configmap_at_config_path_and_data_volume() -> None:
    deployment = _one("Deployment")
    container = _container()
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    config_mount = mounts["/app/config"]
    assert config_mount["readOnly"] is True
    configmap = _one("ConfigMap")
    assert volumes[config_mount["name"]]["configMap"]["name"] == configmap["metadata"]["name"]
    config_path = {e["name"]: e.get("value") for e in container["env"]}["CONFIG_PATH"]
    assert config_path == "/app/config/" + next(iter(configmap["data"]))
    data_mount = mounts["/app/data"]
    assert not data_mount.get("readOnly", False)
    assert "emptyDir" in volumes[data_mount["name"]]
    # With a read-only root filesystem every directory the worker writes is a volume.
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"/app/data", "/app/state", "/tmp"} <= set(mounts)


_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)(m|k|Ki|Mi|Gi|Ti|M|G|T)?$")
_SUFFIX = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
_SUFFIX.update({"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40})


def _quantity(value: str | int) -> float:
    """A Kubernetes quantity ("100m", "512Mi", 1) as a number; the schema only says string."""
    match = _QUANTITY.match(str(value))
    assert match, f"not a Kubernetes quantity: {value!r}"
    number, suffix = match.groups()
    return float(number) * (_SUFFIX[suffix] if suffix else 1)


def test_k8s_deployment_resources_requests_within_limits() -> None:
    resources = _container()["resources"]
    assert set(resources["requests"]) == {"cpu", "memory"}
    assert set(resources["limits"]) == {"cpu", "memory"}
    for name in ("cpu", "memory"):
        assert _quantity(resources["requests"][name]) <= _quantity(resources["limits"][name])
    assert _quantity(resources["limits"]["memory"]) >= 256 * 2**20


def test_k8s_deployment_runs_as_the_image_user(repo: Path) -> None:
    users = [c.value[0] for c in dockerfile.parse_file(str(repo / "Dockerfile")) if c.cmd == "USER"]
    uid, _, gid = users[-1].partition(":")
    pod = _one("Deployment")["spec"]["template"]["spec"]["securityContext"]
    assert pod["runAsNonRoot"] is True
    assert (str(pod["runAsUser"]), str(pod["runAsGroup"])) == (uid, gid or uid)


def test_k8s_service_selects_deployment_pods_on_port_8000() -> None:
    service, deployment = _one("Service"), _one("Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    [port] = service["spec"]["ports"]
    assert port["port"] == 8000
    assert _port(_container(), port["targetPort"]) == 8000
    # The topic Job's pod must not be picked up by the Service.
    job_labels = _one("Job")["spec"]["template"]["metadata"]["labels"]
    assert not service["spec"]["selector"].items() <= job_labels.items()


def test_k8s_topics_job_creates_job_data_with_three_partitions() -> None:
    [container] = _one("Job")["spec"]["template"]["spec"]["containers"]
    topics = created_topics("\n".join([*container["command"], *container["args"]]))
    assert set(topics) == {"job_data", "job_raw", "job_commands", "job_rejects", "job_candidates"}
    assert all(t.partitions == 3 and t.if_not_exists for t in topics.values())


def test_k8s_kustomization_lists_existing_files_without_secret() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    resources = kustomization["resources"]
    assert all((K8S / name).is_file() for name in resources)
    assert "secret.example.yaml" not in resources
    assert {"configmap.yaml", "deployment.yaml", "service.yaml"} <= set(resources)
