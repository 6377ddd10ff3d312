"""The Kubernetes manifests: every overlay builds and every resource decodes strictly into its API
type (deploy/k8s/check, built from its Go modules: kustomize's and k8s.io/api's), and each service
runs as non-root on a read-only root filesystem with only the secrets its settings read."""

import dataclasses
import importlib
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from mailstream.core.settings import env_name

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy/k8s"
OVERLAYS = sorted(str(p.relative_to(K8S)) for p in (K8S / "overlays").iterdir() if p.is_dir())
CHECKER = ROOT / ".mailstream/tools/k8scheck"
SETTINGS = {
    "gateway": "mailstream.gateway.settings:GatewaySettings",
    "renderer": "mailstream.renderer.settings:RendererSettings",
    "sender": "mailstream.sender.settings:SenderSettings",
    "tracker": "mailstream.tracker.settings:TrackerSettings",
    "fanout": "mailstream.gateway.settings:GatewaySettings",  # the gateway's image, another command
    "triggers": "mailstream.gateway.triggers.settings:TriggerSettings",  # the same
    "webhooks": "mailstream.gateway.settings:GatewaySettings",  # the same
}
CONSUMERS = {"renderer", "sender", "tracker"}  # their BatchLoop names label mailstream_consumer_lag


@pytest.fixture(scope="module")
def checker() -> Path:
    env = {**os.environ, "GOFLAGS": "-mod=mod"}
    build = subprocess.run(
        ["go", "build", "-o", str(CHECKER), "."], cwd=K8S / "check", env=env, capture_output=True, text=True
    )
    assert build.returncode == 0, build.stderr
    return CHECKER


def check(checker: Path, *dirs: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(checker), *dirs], cwd=K8S, capture_output=True, text=True)


def test_the_base_and_every_overlay_build_and_decode_strictly(checker):
    assert OVERLAYS == ["overlays/development", "overlays/production"]
    result = check(checker, "base", *OVERLAYS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_check_fails_on_a_misspelt_field(checker, tmp_path):
    overlay = tmp_path / "typo"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "resources": [os.path.relpath(K8S / "base", overlay)],
                "patches": [
                    {
                        "target": {"kind": "Deployment", "name": "mailstream-sender"},
                        "patch": "- {op: add, path: /spec/template/spec/containers/0/readinesProbe, value: {}}",
                    }
                ],
            }
        )
    )
    result = check(checker, str(overlay))
    assert (
        result.returncode == 1
        and "mailstream-sender: error unmarshaling JSON" in result.stdout
        and 'unknown field "readinesProbe"' in result.stdout
    )


def base_documents(service: str) -> dict[str, dict]:
    return {d["kind"]: d for d in yaml.safe_load_all((K8S / f"base/{service}.yaml").read_text())}


def secret_settings(service: str) -> set[str]:
    module, name = SETTINGS[service].split(":")
    settings = getattr(importlib.import_module(module), name)
    return {env_name(f.name) for f in dataclasses.fields(settings) if f.metadata.get("secret")}


@pytest.mark.parametrize("service", SETTINGS)
def test_each_service_gets_only_the_secrets_its_settings_read(service):
    pod = base_documents(service)["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    referenced = {e["name"] for e in container["env"] if "secretKeyRef" in e.get("valueFrom", {})}
    assert "MAILSTREAM_DATABASE_URL" in referenced
    assert referenced <= secret_settings(service)
    assert ("MAILSTREAM_LINK_SIGNING_KEYS" in referenced) == (service in ("renderer", "tracker"))
    assert all("secretRef" not in source for source in container.get("envFrom", []))  # no whole-Secret imports


@pytest.mark.parametrize("service", SETTINGS)
def test_each_service_runs_non_root_read_only_with_probes_and_a_writable_tmp(service):
    docs = base_documents(service)
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert docs["Service"]["spec"]["selector"] == {"app": f"mailstream-{service}"}
    assert "PodDisruptionBudget" in docs


@pytest.mark.parametrize("service", sorted(CONSUMERS))
def test_the_consumers_scale_on_their_own_consumer_lag_up_to_the_partition_count(service):
    hpa = base_documents(service)["HorizontalPodAutoscaler"]["spec"]
    (metric,) = hpa["metrics"]
    assert metric["type"] == "External"
    assert metric["external"]["metric"]["name"] == "mailstream_consumer_lag"
    assert metric["external"]["metric"]["selector"]["matchLabels"] == {"consumer": service}
    assert hpa["maxReplicas"] == 6  # the partitions of the topic it consumes (schemas/topics.py)


@pytest.mark.parametrize("service", SETTINGS)
def test_each_image_runs_as_the_manifests_user_and_writes_nothing_to_its_root(service):
    folder = service if service in ("renderer", "sender", "tracker") else "api-gateway"
    dockerfile = (ROOT / f"services/{folder}/Dockerfile").read_text()
    assert "useradd --system --uid 10001" in dockerfile and "\nUSER mailstream" in dockerfile
    assert "PYTHONDONTWRITEBYTECODE=1" in dockerfile  # no __pycache__ next to the code
    assert "VOLUME" not in dockerfile  # nothing expects a writable folder but /tmp
