"""Static checks of docker-compose.yml: CI has no Docker engine, so no container is started."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"

LOCALSTACK_IMAGE = "localstack/localstack:4.14.0"
HOOK_SOURCE = "./localstack/init/ready.d"
HOOK_TARGET = "/etc/localstack/init/ready.d"
HOOK_SCRIPT = REPO_ROOT / "localstack/init/ready.d/10-deploy.sh"
PROJECT_TARGET = "/opt/project"
DOCKER_SOCKET = "/var/run/docker.sock"
GATEWAY_PORT = 4566

# The interpreter with boto3 in each image; the deploy hook runs it as $PYTHON.
HOOK_PYTHON = {
    "localstack": "/opt/code/localstack/.venv/bin/python",
    "ministack": "/usr/local/bin/python3",
}
READY_ENDPOINT = {
    "localstack": "/_localstack/init/ready",
    "ministack": "/_ministack/ready",
}
EMULATORS = sorted(HOOK_PYTHON)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    with COMPOSE_FILE.open(encoding="utf-8") as handle:
        document = yaml.safe_load(handle)
    assert isinstance(document, dict), "docker-compose.yml is not a YAML mapping"
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose.get("services")
    assert isinstance(found, dict) and found, "docker-compose.yml declares no services"
    return found


def image_tag(image: str) -> str | None:
    """The tag of an image reference, or None; a colon before the last slash is a registry port."""
    name = image.split("@", 1)[0]
    last_segment = name.rsplit("/", 1)[-1]
    if ":" not in last_segment:
        return None
    return last_segment.rsplit(":", 1)[1]


def environment(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        pairs = (entry.split("=", 1) for entry in raw)
        return {pair[0]: pair[1] if len(pair) == 2 else "" for pair in pairs}
    return {key: "" if value is None else str(value) for key, value in raw.items()}


def mounts(service: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    """Each volume's container path mapped to (host source, read_only)."""
    found: dict[str, tuple[str, bool]] = {}
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict):
            found[volume["target"]] = (volume.get("source", ""), bool(volume.get("read_only")))
            continue
        parts = volume.split(":")
        if len(parts) < 2:
            continue
        options = parts[2].split(",") if len(parts) > 2 else []
        found[parts[1]] = (parts[0], "ro" in options)
    return found


def published_ports(service: dict[str, Any]) -> set[int]:
    found: set[int] = set()
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            if port.get("published"):
                found.add(int(port["published"]))
            continue
        host_side, _, _container_side = str(port).split("/", 1)[0].rpartition(":")
        if host_side:
            found.add(int(host_side.rsplit(":", 1)[-1]))
    return found


def healthcheck_command(service: dict[str, Any]) -> list[str]:
    test = (service.get("healthcheck") or {}).get("test")
    assert test, "service has no healthcheck test"
    if isinstance(test, str):
        return ["CMD-SHELL", test]
    return [str(part) for part in test]


def test_compose_declares_both_emulators(services: dict[str, dict[str, Any]]) -> None:
    assert set(EMULATORS) <= set(services)


def test_every_image_is_pinned_to_an_exact_tag(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        image = service.get("image")
        assert image, f"{name} has no image"
        assert "$" not in image, f"{name}: image {image!r} depends on the environment"
        tag = image_tag(image)
        assert tag, f"{name}: image {image!r} has no tag"
        assert tag != "latest", f"{name}: image {image!r} is not pinned"


def test_localstack_is_the_last_tag_that_starts_without_a_token(
    services: dict[str, dict[str, Any]],
) -> None:
    assert services["localstack"]["image"] == LOCALSTACK_IMAGE


@pytest.mark.parametrize("name", EMULATORS)
def test_emulator_mounts_the_deploy_hook_folder(services: dict[str, dict[str, Any]], name: str) -> None:
    source, _ = mounts(services[name]).get(HOOK_TARGET, ("", False))
    assert source == HOOK_SOURCE


@pytest.mark.parametrize("name", EMULATORS)
def test_emulator_mounts_the_repo_writable_at_project_root(services: dict[str, dict[str, Any]], name: str) -> None:
    source, read_only = mounts(services[name]).get(PROJECT_TARGET, ("", True))
    assert source in {".", "./"}
    assert not read_only, ".sandbox/outputs.json must be written back to the host"
    assert environment(services[name]).get("PROJECT_ROOT") == PROJECT_TARGET


@pytest.mark.parametrize("name", EMULATORS)
def test_hook_runs_the_python_that_has_boto3(services: dict[str, dict[str, Any]], name: str) -> None:
    assert environment(services[name]).get("PYTHON") == HOOK_PYTHON[name]


def test_localstack_passes_the_auth_token_through(services: dict[str, dict[str, Any]]) -> None:
    token = environment(services["localstack"]).get("LOCALSTACK_AUTH_TOKEN")
    assert token == "${LOCALSTACK_AUTH_TOKEN:-}"


def test_localstack_reaches_the_docker_engine_for_lambdas(
    services: dict[str, dict[str, Any]],
) -> None:
    source, _ = mounts(services["localstack"]).get(DOCKER_SOCKET, ("", False))
    assert source == DOCKER_SOCKET


@pytest.mark.parametrize("name", EMULATORS)
def test_healthcheck_waits_for_the_ready_hooks(services: dict[str, dict[str, Any]], name: str) -> None:
    command = healthcheck_command(services[name])
    assert command[0] in {"CMD", "CMD-SHELL"}
    assert READY_ENDPOINT[name] in " ".join(command)


@pytest.mark.parametrize("name", EMULATORS)
def test_healthcheck_python_is_valid(services: dict[str, dict[str, Any]], name: str) -> None:
    command = healthcheck_command(services[name])
    if command[:1] != ["CMD"] or "-c" not in command:
        pytest.skip("healthcheck is not an inline Python program")
    code = command[command.index("-c") + 1]
    compile(code, f"{name} healthcheck", "exec")


def test_plain_up_starts_exactly_one_emulator_on_the_gateway_port(
    services: dict[str, dict[str, Any]],
) -> None:
    default = [name for name, service in services.items() if not service.get("profiles")]
    on_gateway = [name for name in default if GATEWAY_PORT in published_ports(services[name])]
    assert on_gateway == ["localstack"]


def test_ministack_only_runs_under_its_profile(services: dict[str, dict[str, Any]]) -> None:
    assert services["ministack"].get("profiles") == ["ministack"]
    assert GATEWAY_PORT in published_ports(services["ministack"])


def test_mounted_hook_exists_and_localstack_can_execute_it() -> None:
    assert HOOK_SCRIPT.is_file(), f"{HOOK_SCRIPT.relative_to(REPO_ROOT)} is missing"
    # LocalStack runs a .sh hook as an executable, so it needs the exec bit and a shebang.
    assert os.access(HOOK_SCRIPT, os.X_OK), f"{HOOK_SCRIPT.name} is not executable"
    assert HOOK_SCRIPT.read_text(encoding="utf-8").startswith("#!")
