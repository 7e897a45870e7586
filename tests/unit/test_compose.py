"""Checks of the Docker path without Docker: CI has no engine, so no container is started.

docker-compose.yml is read statically; the deploy hook runs on the host against a stub deploy.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
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

# The longest a deploy may take inside each emulator, in seconds (docs/docker.md cites both):
# sandbox.deploy.local gives up on the stack after 600 s, and LocalStack's first Lambda runtime-image pull
# happens inside that wait; MiniStack kills a ready.d script after 300 s.
DEPLOY_LIMIT_S = {"localstack": 600, "ministack": 300}
# Emulator start-up before the hook runs, and the seeding after the stack.
START_UP_MARGIN_S = 60

# A stand-in for the package's deployer (sandbox.deploy.local): imports a sibling module (which would write
# tools/sandbox/__pycache__), writes .sandbox/outputs.json as the real one does, and exits with $STUB_EXIT.
STUB_DEPLOY = """\
import json, os, sys
from pathlib import Path

from sandbox import sibling  # noqa: F401

sandbox = Path(os.environ.get("SANDBOX_DIR") or Path(os.environ["PROJECT_ROOT"]) / ".sandbox")
sandbox.mkdir(parents=True, exist_ok=True)
(sandbox / "outputs.json").write_text(json.dumps(sys.argv[1:]))
sys.exit(int(os.environ.get("STUB_EXIT", "0")))
"""
# How each emulator starts the hook: MiniStack as `sh 10-deploy.sh`, LocalStack as an executable.
HOOK_LAUNCHERS = {"ministack": ["sh"], "localstack": []}
CHECKOUT_OWNER = (4242, 4343)


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


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)")
_UNIT_SECONDS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def seconds(duration: str) -> float:
    """A Compose duration such as `5s` or `1m30s`, in seconds."""
    text = str(duration).strip()
    parts = _DURATION_PART.findall(text)
    assert parts and "".join(value + unit for value, unit in parts) == text, f"not a duration: {duration!r}"
    return sum(float(value) * _UNIT_SECONDS[unit] for value, unit in parts)


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


@pytest.mark.parametrize("name", EMULATORS)
def test_healthcheck_window_outlasts_the_longest_deploy(services: dict[str, dict[str, Any]], name: str) -> None:
    check = services[name]["healthcheck"]
    start_period = seconds(check["start_period"])
    window = start_period + seconds(check["interval"]) * int(check["retries"])
    # Failures inside start_period do not count, so a slow first deploy cannot turn the container unhealthy.
    assert start_period >= DEPLOY_LIMIT_S[name]
    assert window >= DEPLOY_LIMIT_S[name] + START_UP_MARGIN_S


@pytest.mark.parametrize("name", EMULATORS)
def test_healthcheck_runs_on_engines_older_than_25(services: dict[str, dict[str, Any]], name: str) -> None:
    check = services[name]["healthcheck"]
    # Compose refuses start_interval below Docker Engine 25; a short interval does its job instead.
    assert "start_interval" not in check
    assert seconds(check["interval"]) <= 10


def test_hook_hands_the_sandbox_back_and_writes_no_bytecode() -> None:
    hook = HOOK_SCRIPT.read_text(encoding="utf-8")
    assert "PYTHONDONTWRITEBYTECODE=1" in hook
    assert re.search(r"^trap \w+ EXIT$", hook, re.MULTILINE), "the hand-back must run even when the deploy fails"
    assert 'stat -c %u:%g "$PROJECT_ROOT"' in hook and "chown -hR" in hook
    # An exec'd deploy would replace the shell, and the EXIT trap with it.
    assert not re.search(r"^exec .*deploy\.py", hook, re.MULTILINE)


def test_hook_file_has_lf_endings() -> None:
    assert b"\r" not in HOOK_SCRIPT.read_bytes(), f"{HOOK_SCRIPT.name} has CRLF endings"


def _git() -> str:
    git = shutil.which("git")
    if git is None or not (REPO_ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout")
    return git


@pytest.mark.parametrize(
    "path",
    ["localstack/init/ready.d/10-deploy.sh", "localstack/init/ready.d/20-future-hook.sh", ".ci/run"],
)
def test_gitattributes_pin_lf_for_executed_scripts(path: str) -> None:
    result = subprocess.run(
        [_git(), "check-attr", "eol", "--", path], cwd=REPO_ROOT, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{path}: eol: lf"


def test_hook_is_stored_with_lf_endings() -> None:
    path = str(HOOK_SCRIPT.relative_to(REPO_ROOT))
    result = subprocess.run(
        [_git(), "ls-files", "--eol", "--", path], cwd=REPO_ROOT, capture_output=True, text=True, timeout=30
    )
    assert result.stdout.split()[:1] == ["i/lf"], result.stdout


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A project directory whose tools/sandbox/deploy/local.py is the stub."""
    project = tmp_path / "project"
    package = project / "tools" / "sandbox"
    (package / "deploy").mkdir(parents=True)
    for init in (package / "__init__.py", package / "deploy" / "__init__.py"):
        init.write_text("", encoding="utf-8")
    (package / "deploy" / "local.py").write_text(STUB_DEPLOY, encoding="utf-8")
    (package / "sibling.py").write_text("LOADED = True\n", encoding="utf-8")
    return project


def run_hook(project: Path, launcher: str, **env: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("bash") is None:
        pytest.skip("the hook needs bash")
    command = [shutil.which(part) or part for part in HOOK_LAUNCHERS[launcher]] + [str(HOOK_SCRIPT)]
    environment = {"PATH": os.environ["PATH"], "PROJECT_ROOT": str(project), "PYTHON": sys.executable, **env}
    return subprocess.run(command, env=environment, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("launcher", sorted(HOOK_LAUNCHERS))
def test_hook_deploys_without_bytecode_in_the_checkout(checkout: Path, launcher: str) -> None:
    result = run_hook(checkout, launcher)

    assert result.returncode == 0, result.stderr
    assert json.loads((checkout / ".sandbox" / "outputs.json").read_text()) == []
    assert not list(checkout.rglob("__pycache__"))


@pytest.mark.parametrize("launcher", sorted(HOOK_LAUNCHERS))
def test_hook_fails_when_the_deploy_fails(checkout: Path, launcher: str) -> None:
    result = run_hook(checkout, launcher, STUB_EXIT="3")

    assert result.returncode == 3


def _owners(root: Path) -> set[tuple[int, int]]:
    return {(path.lstat().st_uid, path.lstat().st_gid) for path in [root, *root.rglob("*")]}


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="the container case runs as root")
@pytest.mark.parametrize("exit_code", ["0", "3"])
def test_hook_run_as_root_gives_the_sandbox_to_the_checkout_owner(checkout: Path, exit_code: str) -> None:
    # Given a checkout owned by a user other than root, as a bind mount is under rootful Docker
    for path in [checkout, *checkout.rglob("*")]:
        os.chown(path, *CHECKOUT_OWNER)

    # When the hook runs as root, as both images run it
    run_hook(checkout, "localstack", STUB_EXIT=exit_code)

    # Then everything in .sandbox/ belongs to the checkout's owner, whether the deploy succeeded or not
    assert (checkout / ".sandbox" / "outputs.json").exists()
    assert _owners(checkout / ".sandbox") == {CHECKOUT_OWNER}


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="the container case runs as root")
def test_hook_run_as_root_leaves_a_sandbox_outside_the_checkout_alone(checkout: Path, tmp_path: Path) -> None:
    os.chown(checkout, *CHECKOUT_OWNER)
    elsewhere = tmp_path / "elsewhere"

    run_hook(checkout, "localstack", SANDBOX_DIR=str(elsewhere))

    assert _owners(elsewhere) == {(0, 0)}
