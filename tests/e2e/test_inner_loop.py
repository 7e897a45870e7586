"""`make deploy` after a handler change: only the code is pushed, and the API serves it at once."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import requests
from e2e_support import ROOT, eventually
from test_sandbox_lifecycle import emulator, free_port


def test_a_one_line_handler_change_is_served_after_make_deploy(tmp_path):
    # Given a copy of the project deployed on its own emulator
    project = tmp_path / "project"
    for folder in ("functions", "infra", "tools", "localstack", "seed"):
        shutil.copytree(ROOT / folder, project / folder, ignore=shutil.ignore_patterns("__pycache__"))
    env = dict(
        os.environ,
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}",
        SANDBOX_DIR=str(tmp_path / "sandbox"),
        PROJECT_ROOT=str(project),
        PYTHON=sys.executable,
    )
    hook = [shutil.which("bash") or "/bin/bash", str(project / "localstack" / "init" / "ready.d" / "10-deploy.sh")]
    assert emulator("start", env).returncode == 0
    try:
        first = subprocess.run(hook, env=env, capture_output=True, text=True, timeout=300)
        assert first.returncode == 0, first.stderr
        base = json.loads(first.stdout)["ApiBaseUrl"]
        assert requests.get(f"{base}/orders/NOPE", timeout=30).json() == {"message": "Pedido não encontrado."}

        # When one line of a handler changes and the hook runs again (what `make deploy` does)
        handler = project / "functions" / "handlers" / "answers.py"  # the texts the API handler speaks
        handler.write_text(handler.read_text("utf-8").replace("Pedido não encontrado.", "Pedido não existe."), "utf-8")
        second = subprocess.run(hook, env=env, capture_output=True, text=True, timeout=300)

        # Then only the functions' code was updated, and the API answers with the new code
        assert second.returncode == 0, second.stderr
        functions = (ROOT / "infra" / "template.yaml").read_text("utf-8").count("Type: AWS::Lambda::Function\n")
        assert f"template unchanged; code of {functions} function(s) updated" in second.stderr
        eventually(
            lambda: requests.get(f"{base}/orders/NOPE", timeout=30).json() == {"message": "Pedido não existe."},
            timeout=10,
            what="the new handler code served",
        )
    finally:
        emulator("stop", env)
