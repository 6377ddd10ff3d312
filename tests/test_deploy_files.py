"""docker-compose.yml and the Kubernetes manifests describe the same topology as the local stack."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
CONTRACT_PORTS = {
    "kafka": 9092,
    "postgres": 5432,
    "sink": 2525,
    "gateway": 8080,
    "renderer": 8081,
    "sender": 8082,
    "tracker": 8090,
}


def interpolated(text: str, env: dict[str, str]) -> str:
    """Compose's ${VAR:-default} with the given variables (the defaults otherwise)."""
    return re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: env.get(m.group(1), m.group(2)), text)


def compose(env: dict[str, str] | None = None):
    return yaml.safe_load(interpolated((ROOT / "docker-compose.yml").read_text(), env or {}))


def test_compose_has_the_stack_and_the_four_services_on_the_contract_ports():
    services = compose()["services"]
    for name, port in CONTRACT_PORTS.items():
        assert f"127.0.0.1:{port}:{port}" in services[name]["ports"], name
    assert services["kafka"]["image"].startswith("apache/kafka:4.")
    assert services["postgres"]["image"].startswith("postgres:")
    for name in ("gateway", "renderer", "sender", "tracker"):
        assert (ROOT / services[name]["build"]["dockerfile"]).exists()
        assert services[name]["environment"]["MAILSTREAM_KAFKA_BOOTSTRAP"] == "kafka:9092"


def test_compose_replica_counts_are_settable_and_a_replicated_port_becomes_a_range():
    assert {n: s.get("deploy", {}).get("replicas") for n, s in compose()["services"].items() if "deploy" in s} == {
        "gateway": 1,
        "fanout": 1,
        "triggers": 1,
        "webhooks": 1,
        "renderer": 1,
        "sender": 1,
        "tracker": 1,
    }
    scaled = compose({"MAILSTREAM_RENDERER_REPLICAS": "3", "MAILSTREAM_RENDERER_PORTS": "8181-8183"})["services"]
    assert scaled["renderer"]["deploy"]["replicas"] == 3
    assert scaled["renderer"]["ports"] == ["127.0.0.1:8181-8183:8081"]
    assert compose({"MAILSTREAM_TRACKER_REPLICAS": "2"})["services"]["tracker"]["deploy"]["replicas"] == 2


def test_compose_file_is_valid_for_the_docker_compose_cli():
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        command = ["docker", "compose", "config", "--quiet"]
    elif shutil.which("docker-compose"):
        command = ["docker-compose", "config", "--quiet"]
    else:
        pytest.skip("no docker compose CLI on this machine (the docker client here has no compose plugin)")
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_k8s_base_lists_a_deployment_and_service_per_service_with_probes():
    listed = yaml.safe_load((ROOT / "deploy/k8s/base/kustomization.yaml").read_text())["resources"]
    for name in ("gateway", "renderer", "sender", "tracker"):
        assert f"{name}.yaml" in listed
        docs = list(yaml.safe_load_all((ROOT / f"deploy/k8s/base/{name}.yaml").read_text()))
        assert [d["kind"] for d in docs][:2] == ["Deployment", "Service"]
        container = docs[0]["spec"]["template"]["spec"]["containers"][0]
        assert container["ports"][0]["containerPort"] == CONTRACT_PORTS[name]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_the_compose_policy_folder_ships_the_same_policy_but_its_own_pools():
    """Only pools.toml differs (the compose network's address); a missing file would leave the
    compose sender on built-in defaults (every 5xx uncategorized, no shaping)."""
    shipped, compose_policy = ROOT / "deploy/policy", ROOT / "deploy/compose/policy"
    names = sorted(p.name for p in shipped.glob("*.toml"))
    assert sorted(p.name for p in compose_policy.glob("*.toml")) == names
    for name in set(names) - {"pools.toml"}:
        assert (compose_policy / name).read_text() == (shipped / name).read_text(), name
