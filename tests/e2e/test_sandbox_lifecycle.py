"""`make up`/`make down` mechanics: a second MiniStack on its own port and folder, started and stopped
by sandbox.emulator exactly as the Makefile does, must leave no process behind, Lambda workers included."""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import boto3
from e2e_support import ROOT, Api, make_order, unique

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
        [sys.executable, "-m", "sandbox.emulator", command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_start_twice_is_harmless_and_stop_leaves_no_worker_nor_temporary_folder(tmp_path):
    endpoint = f"http://127.0.0.1:{free_port()}"
    env = dict(os.environ, AWS_ENDPOINT_URL=endpoint, SANDBOX_DIR=str(tmp_path))
    outside = Path(tempfile.gettempdir())
    name = unique("lifecycle-probe").lower()

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
            FunctionName=name,
            Runtime="python3.12",
            Role="arn:aws:iam::000000000000:role/probe",
            Handler="app.handler",
            Code={"ZipFile": code.getvalue()},
        )
        lam.get_waiter("function_active_v2").wait(FunctionName=name)
        assert lam.invoke(FunctionName=name)["StatusCode"] == 200
        assert len(group_members(pid)) >= 2, "expected the server and at least one Lambda worker"
        # ... whose code folders are under the sandbox's tmp/, none in the machine's temporary folder
        assert list((tmp_path / "tmp").glob(f"ministack-lambda-{name}-*"))
        assert not list(outside.glob(f"ministack-lambda-{name}-*"))
    finally:
        # When it is stopped as `make down` stops it
        stopped = emulator("stop", env)

    # Then no process of its group is left, the pid file is gone, and so are its temporary folders
    assert stopped.returncode == 0, stopped.stderr
    assert group_members(pid) == []
    assert not (tmp_path / "ministack.pid").exists()
    assert not (tmp_path / "tmp").exists()


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
    assert printed["ApiBaseUrl"].endswith(f"/_aws/execute-api/{outputs['ApiId']}/dev")


def test_with_persistence_orders_queued_at_down_are_processed_after_up(tmp_path):
    endpoint = f"http://127.0.0.1:{free_port()}"
    env = dict(os.environ, AWS_ENDPOINT_URL=endpoint, SANDBOX_DIR=str(tmp_path), PYTHON=sys.executable)
    hook = [shutil.which("bash") or "/bin/bash", str(ROOT / "localstack" / "init" / "ready.d" / "10-deploy.sh")]

    def up() -> dict:
        started = subprocess.run(
            [sys.executable, "-m", "sandbox.emulator", "start", "--persist"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert started.returncode == 0, started.stdout + started.stderr
        deployed = subprocess.run(hook, env=env, capture_output=True, text=True, timeout=300)
        assert deployed.returncode == 0, deployed.stderr
        return json.loads((tmp_path / "outputs.json").read_text())

    session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
    try:
        # Given a persistent sandbox whose processor is busy elsewhere (its consumer paused), so orders queue up
        outputs = up()
        lam = session.client("lambda", endpoint_url=endpoint)
        for mapping in lam.list_event_source_mappings(FunctionName=outputs["ProcessorFunctionName"])[
            "EventSourceMappings"
        ]:
            lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
        orders = [make_order([("PRD-4004", 1)], order_id=unique("RESTART")) for _ in range(12)]
        api = Api(outputs["ApiBaseUrl"])
        assert [api.post_order(o).status_code for o in orders] == [202] * 12
        assert {api.get_order(o["order_id"]).json()["order_status"] for o in orders} == {"Recebido"}

        # When the sandbox is stopped (`make down`) and started again (`make up PERSIST=1`)
        assert emulator("stop", env).returncode == 0
        outputs = up()
        api = Api(outputs["ApiBaseUrl"])

        # Then every order is processed, nothing lost: PRD-4004 had 10 units
        finals = [api.final_order(o["order_id"], timeout=60)["order_status"] for o in orders]
        assert finals.count("Novo Pedido") == 10 and finals.count("Produto Pendente") == 2
        assert api.stock("PRD-4004") == (0, 10)
    finally:
        emulator("stop", env)
