"""`make up`/`make down` mechanics: a second MiniStack on its own port and folder, started and stopped
by tools/emulator.py exactly as the Makefile does, must leave no process behind, Lambda workers included."""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import boto3
from e2e_support import ROOT

HANDLER = "def handler(event, context):\n    print('hello')\n    return {'ok': True}\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append(int(entry.name))
    return members


def emulator(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "tools" / "emulator.py"), command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_start_twice_is_harmless_and_stop_leaves_no_worker(tmp_path):
    endpoint = f"http://127.0.0.1:{free_port()}"
    env = dict(os.environ, AWS_ENDPOINT_URL=endpoint, SANDBOX_DIR=str(tmp_path))

    # Given a MiniStack started as `make up` starts it, then started again
    assert emulator("start", env).returncode == 0
    pid = int((tmp_path / "ministack.pid").read_text())
    again = emulator("start", env)
    assert again.returncode == 0 and "already running" in again.stdout
    assert int((tmp_path / "ministack.pid").read_text()) == pid

    try:
        # And a Lambda invoked once, so a worker subprocess exists
        session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("app.py", HANDLER)
        lam = session.client("lambda", endpoint_url=endpoint)
        lam.create_function(
            FunctionName="lifecycle-probe",
            Runtime="python3.12",
            Role="arn:aws:iam::000000000000:role/probe",
            Handler="app.handler",
            Code={"ZipFile": code.getvalue()},
        )
        lam.get_waiter("function_active_v2").wait(FunctionName="lifecycle-probe")
        assert lam.invoke(FunctionName="lifecycle-probe")["StatusCode"] == 200
        assert len(group_members(pid)) >= 2, "expected the server and at least one Lambda worker"
    finally:
        # When it is stopped as `make down` stops it
        stopped = emulator("stop", env)

    # Then no process of its group is left, and the pid file is gone
    assert stopped.returncode == 0, stopped.stderr
    assert group_members(pid) == []
    assert not (tmp_path / "ministack.pid").exists()


def test_the_deploy_hook_is_idempotent(outputs):
    """Running the hook again (as `make up` twice would) succeeds and keeps the same resources."""
    hook = ROOT / "localstack" / "init" / "ready.d" / "10-deploy.sh"
    result = subprocess.run(
        [shutil.which("bash") or "/bin/bash", str(hook)],
        env=dict(os.environ, PYTHON=sys.executable),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    for name in ("ApiId", "OrdersTable", "OrderQueueUrl", "DataLakeBucket", "ErrorTopicArn", "PendingTopicArn"):
        assert printed[name] == outputs[name]
    assert printed["ApiBaseUrl"].endswith(f"/restapis/{outputs['ApiId']}/dev/_user_request_")
