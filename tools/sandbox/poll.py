"""Waiting for what the sandbox does asynchronously: one wait-until with a deadline.

boto3's waiters cover what AWS describes (a stack, a change set, a function's update); this covers the rest:
an order's final status, a file's report, a process that exits. Standard library only: the emulator's
start/stop and the deploy hook run before the virtualenv exists.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class TimedOut(TimeoutError):
    """`check` gave nothing truthy before the deadline; the message names what, and what it gave (or raised) last."""


def wait_until(
    check: Callable[[], T],
    *,
    timeout: float,
    what: str = "condition",
    interval: float = 0.1,
    retry_on: tuple[type[BaseException], ...] = (),
) -> T:
    """`check`'s first truthy answer, asked every `interval` s, or TimedOut.

    An exception in `retry_on` counts as "not yet"; any other propagates at once.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
            last: Any = result
        except retry_on as exc:
            last = exc
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimedOut(f"{what} not reached within {timeout:.0f} s; last: {last!r}")
        time.sleep(min(interval, remaining))
