"""Start, wait for and stop the embedded MiniStack emulator (no Docker).

MiniStack runs in its own process group, recorded in .sandbox/ministack.pid; `stop` signals the whole
group, because its Lambda worker subprocesses can outlive a SIGTERM sent to the server alone. Its temporary
folders (one per Lambda worker, from tempfile.gettempdir()) go to .sandbox/tmp, which `stop` removes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from urllib.parse import urlparse

from sandbox.aws import DEFAULT_ENDPOINT, SANDBOX, default_environment
from sandbox.poll import TimedOut, wait_until

PID_FILE = SANDBOX / "ministack.pid"
LOG_FILE = SANDBOX / "ministack.log"
STATE_DIR = SANDBOX / "state"
PERSIST_MARK = SANDBOX / "persisting"
TMP_DIR = SANDBOX / "tmp"  # MiniStack's TMPDIR: it never removes its ministack-lambda-* folders itself


def endpoint() -> str:
    return os.environ.get("AWS_ENDPOINT_URL", DEFAULT_ENDPOINT).rstrip("/")


def answering(timeout: float = 1.0) -> bool:
    """True when an AWS emulator answers LocalStack's health check (MiniStack answers it too)."""
    base = endpoint()
    if urlparse(base).scheme not in {"http", "https"}:
        raise SystemExit(f"AWS_ENDPOINT_URL must be an http(s) URL, got {base!r}")
    try:
        with urllib.request.urlopen(f"{base}/_localstack/health", timeout=timeout) as response:  # noqa: S310 (scheme checked)
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def our_pid() -> int | None:
    """The pid (and process group) of the MiniStack this checkout started, while it lives; None otherwise."""
    try:
        pid = int(PID_FILE.read_text().strip())
        os.killpg(pid, 0)  # ProcessLookupError (an OSError) once the group is gone
    except (OSError, ValueError):
        return None
    return pid


def start(persist: bool) -> int:
    if our_pid() is not None and answering():
        print(f"MiniStack already running at {endpoint()} (pid {our_pid()})")
        return 0
    if answering():
        print(f"An emulator already answers at {endpoint()}; using it (not started by this project)")
        return 0
    TMP_DIR.mkdir(parents=True, exist_ok=True)
    env = {name: value for name, value in os.environ.items() if name != "AWS_ENDPOINT_URL"}  # MiniStack sets its own
    env.update(
        GATEWAY_PORT=str(urlparse(endpoint()).port or 4566), BIND_HOST="127.0.0.1", TMPDIR=str(TMP_DIR.resolve())
    )
    env.setdefault("LOG_LEVEL", "WARNING")
    PERSIST_MARK.unlink(missing_ok=True)
    if persist:
        STATE_DIR.mkdir(exist_ok=True)
        PERSIST_MARK.touch()
        env.update(PERSIST_STATE="1", STATE_DIR=str(STATE_DIR), S3_PERSIST="1", S3_DATA_DIR=str(STATE_DIR / "s3"))
    with LOG_FILE.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "sandbox.emulator_patch"],  # MiniStack, with its FIFO send made O(1)
            cwd=SANDBOX,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so `stop` reaches every worker
        )
    PID_FILE.write_text(f"{process.pid}\n")

    try:
        wait_until(lambda: process.poll() is not None or answering(0.5), timeout=30, interval=0.05, what="MiniStack")
    except TimedOut:
        print(f"no emulator answered at {endpoint()} within 30 s; see {LOG_FILE}", file=sys.stderr)
        return 1
    if process.poll() is not None:
        print(f"MiniStack exited with {process.returncode}; see {LOG_FILE}", file=sys.stderr)
        return 1
    print(f"MiniStack answering at {endpoint()}")
    return 0


def pause_consumers() -> None:
    """Disable every SQS event-source mapping and wait for in-flight batches to finish.

    MiniStack saves its state on a clean shutdown, in-flight messages included, and those only come back
    after their visibility timeout (minutes). Pausing first leaves every message either done or queued,
    so the next `make up PERSIST=1` (which re-enables the mappings) picks them up at once.
    """
    import boto3  # only here: start/stop must work before the virtualenv has it

    from sandbox.state import queue_depth

    default_environment()  # the local emulator: its dummy credentials unless told otherwise
    session = boto3.session.Session()
    lam, sqs = session.client("lambda"), session.client("sqs")
    queues = []
    for mapping in lam.list_event_source_mappings()["EventSourceMappings"]:
        if ":sqs:" in mapping.get("EventSourceArn", ""):
            lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
            queues.append(sqs.get_queue_url(QueueName=mapping["EventSourceArn"].rsplit(":", 1)[-1])["QueueUrl"])

    def idle() -> bool:
        return all(queue_depth(sqs, url)[1] == 0 for url in queues)

    with contextlib.suppress(TimedOut):  # stop anyway: what is in flight comes back after its visibility timeout
        wait_until(idle, timeout=60, interval=0.2, what="in-flight batches")


def stop() -> int:
    pid = our_pid()
    if pid is None:
        print("MiniStack is not running (no live process from .sandbox/ministack.pid)")
    else:
        if PERSIST_MARK.exists() and answering():
            pause_consumers()
        os.killpg(pid, signal.SIGTERM)  # a clean shutdown lets MiniStack save its state
        try:
            wait_until(lambda: our_pid() is None, timeout=10, interval=0.05, what=f"MiniStack (pid {pid}) stopping")
        except TimedOut:
            os.killpg(pid, signal.SIGKILL)
        print(f"MiniStack (process group {pid}) stopped")
    PID_FILE.unlink(missing_ok=True)
    shutil.rmtree(TMP_DIR, ignore_errors=True)  # nothing of the group is left to use it, or it died on its own
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["start", "stop", "status"])
    parser.add_argument("--persist", action="store_true", help="keep state in .sandbox/state across restarts")
    args = parser.parse_args()
    if args.command == "start":
        return start(args.persist)
    if args.command == "stop":
        return stop()
    running = answering()
    print(f"{endpoint()}: {'answering' if running else 'not answering'}; our pid: {our_pid()}")
    return 0 if running else 1


if __name__ == "__main__":
    sys.exit(main())
