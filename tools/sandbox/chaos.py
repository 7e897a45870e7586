"""A chaos monkey for the embedded sandbox: SIGKILL random Lambda workers of this sandbox's stack.

MiniStack runs each Python function as warm worker subprocesses of its own server process
(`ministack/core/lambda_runtime.py`, `Worker._spawn`: `subprocess.Popen([python, <tmp>/_worker.py])` with
`AWS_LAMBDA_FUNCTION_NAME` set in the worker's environment). A worker of *this* sandbox is therefore a descendant
of the MiniStack this checkout started (`.sandbox/ministack.pid`) whose environment names one of the stack's
functions: other checkouts' emulators, their workers and anything else on the machine are never touched.
MiniStack notices a dead worker on the next invocation and spawns a new one; an invocation in flight when its
worker dies fails, as on AWS when an execution environment is lost.

Only workers that have finished starting are killed (older than `min_age`, 2 s): a worker killed while it starts
makes MiniStack drop *every* worker of that function (docs/RELIABILITY.md, "MiniStack widens a kill").

Processes are read from /proc (Linux): no psutil for one tree walk and one environment read.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from sandbox.emulator import our_pid
from sandbox.records import Kill

PROC = Path("/proc")
FUNCTION_VARIABLE = b"AWS_LAMBDA_FUNCTION_NAME="


def _stat(pid: int, proc: Path) -> list[str]:
    """/proc/<pid>/stat's fields from the state on (state, ppid, ...); empty when the process is gone."""
    try:
        text = (proc / str(pid) / "stat").read_text()
    except OSError:
        return []
    return text[text.rindex(")") + 2 :].split()  # "pid (comm) state ...": comm may hold spaces and parentheses


def age(pid: int, proc: Path = PROC) -> float | None:
    """Seconds since the process started (stat field 22 against /proc/uptime); None if unreadable."""
    try:
        started = int(_stat(pid, proc)[19])
        return float((proc / "uptime").read_text().split()[0]) - started / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def descendants(root: int, proc: Path = PROC) -> set[int]:
    """Every live (not zombie) process below root."""
    children: dict[int, list[int]] = {}
    for entry in proc.iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name), proc)) and stat[0] != "Z":
            children.setdefault(int(stat[1]), []).append(int(entry.name))
    found: set[int] = set()
    todo = list(children.get(root, []))
    while todo:
        found.add(pid := todo.pop())
        todo += children.get(pid, [])
    return found


def function_of(pid: int, proc: Path = PROC) -> str | None:
    """The Lambda function a worker process serves, from its environment; None for any other process."""
    try:
        environ = (proc / str(pid) / "environ").read_bytes().split(b"\0")
    except OSError:
        return None
    names = [v.removeprefix(FUNCTION_VARIABLE).decode() for v in environ if v.startswith(FUNCTION_VARIABLE)]
    return names[0] if names and names[0] else None


def workers(root: int, functions: Iterable[str], proc: Path = PROC) -> dict[int, str]:
    """{pid: function} of the live workers below root that serve one of the functions."""
    wanted = set(functions)
    return {pid: name for pid in descendants(root, proc) if (name := function_of(pid, proc)) in wanted}


def sandbox_root() -> int:
    """The pid of the MiniStack this checkout started: the root of the only workers the monkey may kill."""
    root = our_pid()
    if root is None:
        raise SystemExit(
            "chaos needs the embedded MiniStack this checkout started (`make up`): its Lambda workers are host "
            "processes; an emulator started elsewhere (docker compose, LocalStack) keeps its workers out of reach"
        )
    return root


class ChaosMonkey:
    """Kills one random worker of a random function at each `kill_one()` (the soak calls it every few seconds), and
    records the kills."""

    def __init__(
        self, root: int, functions: Iterable[str], seed: int | None = None, proc: Path = PROC, min_age: float = 2.0
    ) -> None:
        self.root, self.functions, self.min_age = root, sorted(functions), min_age
        self.kills: list[Kill] = []
        self._rng = random.Random(seed)  # noqa: S311 (choosing victims, not secrets)
        self._proc = proc
        self._started = time.monotonic()

    def kill_one(self, function: str | None = None) -> Kill | None:
        """Kill one worker (of `function`, or of a random function with workers); None when there is none."""
        live = {
            pid: name
            for pid, name in workers(self.root, [function] if function else self.functions, self._proc).items()
            if (seconds := age(pid, self._proc)) is None or seconds >= self.min_age  # started, not starting
        }
        if not live:
            return None
        victim_function = self._rng.choice(sorted(set(live.values())))
        pid = self._rng.choice(sorted(p for p, name in live.items() if name == victim_function))
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return None  # it ended between the look and the kill
        kill = Kill(function=victim_function, pid=pid, at=round(time.monotonic() - self._started, 1))
        self.kills.append(kill)
        return kill

    def kills_per_function(self) -> dict[str, int]:
        counts = Counter(k.function for k in self.kills)
        return {name: counts[name] for name in self.functions}
