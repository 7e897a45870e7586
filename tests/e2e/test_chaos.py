"""The chaos monkey of `make soak CHAOS=1` kills a worker of each function of this sandbox, and only that worker;
the function serves the next invocation (MiniStack spawns a new worker)."""

from __future__ import annotations

import json
import os
from signal import SIGKILL

import pytest
from e2e_support import ROOT, eventually, unique

from sandbox.chaos import ChaosMonkey, descendants, workers
from sandbox.emulator import answering
from sandbox.state import stack_functions

SCHEDULED_EVENT = (ROOT / "tests" / "e2e" / "events" / "scheduled.json").read_text("utf-8")


@pytest.fixture(scope="module")
def exercise(aws, outputs, api):
    """exercise(function) runs the function once through its usual door, and fails if it did not answer."""
    lam = aws.client("lambda")

    def run(function: str) -> None:
        if function == outputs["ApiFunctionName"]:
            response = api.get_product(unique("CHAOS-PRD"))
            assert response.status_code == 404, response.text
            return
        # A queue consumer gets an empty batch; anything else (a scheduled function) a scheduled event
        fed_by_queue = lam.list_event_source_mappings(FunctionName=function)["EventSourceMappings"]
        # (one pass of the sweeper, not the three a scheduled run makes 20 s apart)
        payload = json.dumps({"Records": []} if fed_by_queue else {**json.loads(SCHEDULED_EVENT), "passes": 1})
        response = lam.invoke(FunctionName=function, Payload=payload)
        assert "FunctionError" not in response, response["Payload"].read()

    return run


def test_the_monkey_covers_every_function_of_the_stack(aws, outputs):
    functions = stack_functions(aws.client("cloudformation"), outputs["StackName"])
    named = {value for key, value in outputs.items() if key.endswith("FunctionName")}
    assert named <= set(functions)


def test_the_monkey_kills_one_worker_of_each_function_and_it_serves_again(
    aws, outputs, chaos_root, exercise, monkeypatch
):
    signals: list[tuple[int, int]] = []
    real_kill = os.kill

    def recording_kill(pid: int, signal: int) -> None:
        signals.append((pid, signal))
        real_kill(pid, signal)

    monkeypatch.setattr("sandbox.chaos.os.kill", recording_kill)
    for function in stack_functions(aws.client("cloudformation"), outputs["StackName"]):
        # Given the function has served once, so a worker of it is running under our emulator
        exercise(function)
        before = workers(chaos_root, [function])
        assert before, f"no worker of {function} under MiniStack {chaos_root}"
        signals.clear()

        # When the monkey kills one worker of it
        monkey = ChaosMonkey(chaos_root, [function], min_age=0)  # the worker may have just started
        kill = monkey.kill_one(function)

        # Then it sent one SIGKILL, to one of that function's workers, which is gone; the emulator lives on
        assert kill is not None and kill.function == function and kill.pid in before
        assert signals == [(kill.pid, SIGKILL)] and monkey.kills == [kill]
        gone = f"{function} worker {kill.pid} gone"
        eventually(lambda pid=kill.pid: pid not in descendants(chaos_root), timeout=10, what=gone)
        assert answering()

        # And the function answers its next invocation
        exercise(function)
