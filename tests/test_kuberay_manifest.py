"""deploy/kuberay/raycluster.yaml: every worker group is a fleet group that fills one node."""

from __future__ import annotations

from pathlib import Path

import yaml

from benchbox.cost import load_profile
from benchbox.options import RayOptions
from benchbox.sweep.fleet import DEFAULT_GROUP_LABEL

MANIFEST = Path(__file__).resolve().parent.parent / "deploy" / "kuberay" / "raycluster.yaml"
INSTANCE_TYPE = "node.kubernetes.io/instance-type"


def load() -> dict:
    return yaml.safe_load(MANIFEST.read_text())


def test_the_manifest_is_a_raycluster_with_a_cpu_and_a_gpu_group():
    doc = load()
    assert doc["apiVersion"] == "ray.io/v1" and doc["kind"] == "RayCluster"
    assert doc["spec"]["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    groups = doc["spec"]["workerGroupSpecs"]
    assert len(groups) == 2
    gpus = [int(g["rayStartParams"].get("num-gpus", "0")) for g in groups]
    assert sorted(gpus) == [0, 1]


def test_each_group_has_its_name_top_level_labels_and_instance_type():
    for group in load()["spec"]["workerGroupSpecs"]:
        assert group["groupName"]
        labels = group["labels"]  # top level: KubeRay rejects labels in rayStartParams
        assert "labels" not in group["rayStartParams"]
        selector = group["template"]["spec"]["nodeSelector"]
        assert labels["benchbox.io/instance-type"] == selector[INSTANCE_TYPE]
        # What `benchbox fleet` selects by default: the group's name.
        assert labels[DEFAULT_GROUP_LABEL] == group["groupName"]


def test_each_pod_takes_the_whole_node_its_profile_describes():
    for group in load()["spec"]["workerGroupSpecs"]:
        profile = load_profile(group["labels"]["benchbox.io/profile"])
        vcpus = profile.hardware["vcpus"]
        params = group["rayStartParams"]
        (container,) = group["template"]["spec"]["containers"]
        limits, requests = container["resources"]["limits"], container["resources"]["requests"]
        assert int(params["num-cpus"]) == vcpus == int(limits["cpu"])
        # The request leaves the kubelet its reserve, but no room for a second pod.
        request_cpu = float(str(requests["cpu"]).removesuffix("m")) / 1000
        assert vcpus / 2 < request_cpu < vcpus
        assert requests["memory"] == limits["memory"]
        memory_gib = int(limits["memory"].removesuffix("Gi"))
        assert profile.hardware["memory_gb"] / 2 < memory_gib <= profile.hardware["memory_gb"]
        gpus = int(params.get("num-gpus", "0"))
        assert int(limits.get("nvidia.com/gpu", 0)) == gpus
        assert int(requests.get("nvidia.com/gpu", 0)) == gpus


def test_every_pod_gets_the_cluster_token():
    doc = load()
    templates = [doc["spec"]["headGroupSpec"]["template"]]
    templates += [g["template"] for g in doc["spec"]["workerGroupSpecs"]]
    for template in templates:
        (container,) = template["spec"]["containers"]
        env = {e["name"]: e for e in container["env"]}
        assert env["RAY_AUTH_MODE"]["value"] == "token"
        assert env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "benchbox-ray-token"


GENERATORS = MANIFEST.parent / "generators.yaml"


def generator_docs() -> dict[str, dict]:
    """generators.yaml's documents by kind/name."""
    docs = list(yaml.safe_load_all(GENERATORS.read_text()))
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in docs}


def test_the_generator_group_is_what_sweep_ray_selects_one_generator_per_node():
    docs = generator_docs()
    cluster = docs["RayCluster/benchbox-gen"]["spec"]
    assert cluster["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    (group,) = cluster["workerGroupSpecs"]
    # `sweep --ray-group` default selects it by the label KubeRay sets, as `fleet` does.
    assert group["groupName"] == RayOptions().group
    assert group["labels"][DEFAULT_GROUP_LABEL] == group["groupName"] == RayOptions().group
    assert RayOptions().group_label == DEFAULT_GROUP_LABEL
    assert group["replicas"] >= 3 and group["minReplicas"] >= 3  # the three nodes
    assert float(group["rayStartParams"]["num-cpus"]) >= 1  # a generator takes one CPU
    spec = group["template"]["spec"]
    rules = spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    own = group["template"]["metadata"]["labels"]
    server = docs["Deployment/model-server"]["spec"]["template"]["metadata"]["labels"]
    assert {r["topologyKey"] for r in rules} == {"kubernetes.io/hostname"}
    assert [r["labelSelector"]["matchLabels"] for r in rules] == [own, server]


def test_the_server_and_the_driver_sit_beside_the_generators():
    docs = generator_docs()
    service = docs["Service/model-server"]["spec"]
    server = docs["Deployment/model-server"]["spec"]
    assert service["selector"] == server["template"]["metadata"]["labels"]
    assert 8000 in {p["port"] for p in service["ports"]}
    (driver,) = docs["Deployment/benchbox-driver"]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in driver["env"]}
    assert env["RAY_ADDRESS"]["value"].startswith("ray://benchbox-gen-head-svc:10001")
    ray_pods = [docs["RayCluster/benchbox-gen"]["spec"]["headGroupSpec"]["template"]]
    ray_pods += [g["template"] for g in docs["RayCluster/benchbox-gen"]["spec"]["workerGroupSpecs"]]
    for template in ray_pods:
        (container,) = template["spec"]["containers"]
        names = {e["name"] for e in container["env"]}
        assert {"RAY_AUTH_MODE", "RAY_AUTH_TOKEN"} <= names
    assert env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "benchbox-ray-token"
