"""EventBridge schedule (every minute) -> send again the orders and restocks claimed and never sent.

One run sweeps `SWEEP_PASSES` times, `SWEEP_GAP_SECONDS` apart, so a claim left behind by a killed function is
sent again within about STUCK_AFTER_SECONDS + SWEEP_GAP_SECONDS, below the schedule's one-minute grain."""

from __future__ import annotations

import time
from typing import Any

from service.batch import time_left_of
from service.bootstrap import SweeperWiring
from service.logs import log

_wired = SweeperWiring()
_settings = _wired.settings
_sweeper = _wired.sweeper


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    """A scheduled run makes SWEEP_PASSES passes; an event `{"passes": 1}` (an operator's invoke) makes one."""
    time_left = time_left_of(context)
    totals = {"passes": 0, "orders": 0, "restocks": 0}
    for n in range(int(event.get("passes", _settings.passes))):
        if n:
            # Another pass only if it can sleep and still finish well inside the function's timeout.
            if time_left is not None and time_left() < _settings.pass_gap_seconds + 10:
                break
            time.sleep(_settings.pass_gap_seconds)
        result = _sweeper.sweep()
        totals["passes"] += 1
        totals["orders"] += result.orders
        totals["restocks"] += result.restocks
    log("INFO", "sweep finished", **totals)
    return totals
