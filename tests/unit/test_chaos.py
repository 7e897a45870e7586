"""The chaos monkey picks its victims only among this sandbox's workers: read from a fake /proc."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.chaos import ChaosMonkey, descendants, function_of, workers

OURS, THEIRS = 100, 200
STACK = ["order-pipeline-api", "order-pipeline-processor"]


def _process(proc: Path, pid: int, ppid: int, comm: str, env: dict[str, str], state: str = "S") -> None:
    folder = proc / str(pid)
    folder.mkdir()
    (folder / "stat").write_text(f"{pid} ({comm}) {state} {ppid} {pid} 0 0\n")
    (folder / "environ").write_bytes(b"".join(f"{k}={v}".encode() + b"\0" for k, v in env.items()))


def _worker(proc: Path, pid: int, ppid: int, function: str, state: str = "S") -> None:
    _process(proc, pid, ppid, "python", {"PATH": "/usr/bin", "AWS_LAMBDA_FUNCTION_NAME": function}, state)


@pytest.fixture
def proc(tmp_path: Path) -> Path:
    # Given our emulator with workers of two functions (one dead, not yet reaped), a worker of a function that is
    # not in the stack, another checkout's emulator with a worker of the same function name, and a stray process
    # carrying the variable
    _process(tmp_path, 1, 0, "init", {})
    _process(tmp_path, OURS, 1, "ministack", {})
    _worker(tmp_path, 101, OURS, "order-pipeline-api")
    _worker(tmp_path, 102, OURS, "order-pipeline-processor")
    _worker(tmp_path, 103, OURS, "order-pipeline-processor")
    _worker(tmp_path, 104, OURS, "order-pipeline-processor", state="Z")
    _worker(tmp_path, 105, OURS, "other-stack-api")
    _process(tmp_path, 106, 101, "odd (name) x", {"AWS_LAMBDA_FUNCTION_NAME": "order-pipeline-api"})
    _process(tmp_path, THEIRS, 1, "ministack", {})
    _worker(tmp_path, 201, THEIRS, "order-pipeline-api")
    _process(tmp_path, 300, 1, "bash", {"AWS_LAMBDA_FUNCTION_NAME": "order-pipeline-api"})
    return tmp_path


def test_descendants_are_the_whole_live_tree_below_the_root(proc):
    assert descendants(OURS, proc) == {101, 102, 103, 105, 106}


def test_a_worker_is_named_by_its_environment(proc):
    assert function_of(102, proc) == "order-pipeline-processor"
    assert function_of(OURS, proc) is None
    assert function_of(999, proc) is None  # gone


def test_only_our_workers_of_the_stack_functions_are_candidates(proc):
    assert workers(OURS, STACK, proc) == {
        101: "order-pipeline-api",
        102: "order-pipeline-processor",
        103: "order-pipeline-processor",
        106: "order-pipeline-api",
    }
    assert workers(THEIRS, STACK, proc) == {201: "order-pipeline-api"}


def test_the_monkey_kills_a_worker_of_the_function_asked_for_and_records_it(proc, monkeypatch):
    signals: list[tuple[int, int]] = []
    monkeypatch.setattr("sandbox.chaos.os.kill", lambda pid, sig: signals.append((pid, sig)))
    monkey = ChaosMonkey(OURS, STACK, seed=1, proc=proc)

    kill = monkey.kill_one("order-pipeline-processor")

    assert kill is not None and kill.function == "order-pipeline-processor" and kill.pid in {102, 103}
    assert [pid for pid, _ in signals] == [kill.pid]
    assert monkey.kills_per_function() == {"order-pipeline-api": 0, "order-pipeline-processor": 1}


def test_with_no_worker_there_is_nothing_to_kill(proc, monkeypatch):
    monkeypatch.setattr("sandbox.chaos.os.kill", lambda pid, sig: pytest.fail("nothing may be killed"))
    assert ChaosMonkey(THEIRS, ["order-pipeline-processor"], proc=proc).kill_one() is None
