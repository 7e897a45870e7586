"""Run MiniStack with the one change we make to it: a FIFO send that costs O(1), not O(messages of the last 5 minutes).

MiniStack 1.5.33 calls `_prune_dedup` on every send to a FIFO queue (`ministack/services/sqs.py`,
`_act_send_message`), and `_prune_dedup` rebuilds the queue's whole deduplication cache, which holds one entry per
message sent in the last `_DEDUP_WINDOW_S` (300 s). A 10,000-order file therefore costs its sends O(n²): in a py-spy
profile of the emulator during `make bench`'s data-lake file (docs/PERFORMANCE.md), 62 % of the samples of its
request thread were in that one dict comprehension. SQS has no such cost, and the bench's floors never pay it (their
queue is filled before their clock starts).

The cache is written in send order with `expire = time.time() + _DEDUP_WINDOW_S`, so its insertion order is its expiry
order and the expired entries are a prefix of it: dropping that prefix is the same pruning, at the cost of what
expired. (If the wall clock stepped back, a later entry could expire before an earlier one and stay until the earlier
one expires: a deduplication window longer by that step, never shorter.)

`sandbox.emulator` starts MiniStack through this module (`python -m sandbox.emulator_patch`). A MiniStack of another
version runs unchanged, with a warning in its log; LocalStack (`docker compose up`) is not touched.
"""

from __future__ import annotations

import sys
import time
from importlib import metadata
from itertools import takewhile
from typing import Any

PATCHED_VERSION = "1.5.33"  # the version pinned in pyproject.toml, whose sqs.py this was read against


def prune_expired(queue: dict[str, Any]) -> None:
    """Drop the expired entries of a FIFO queue's deduplication cache: the oldest ones, so stop at the first alive."""
    cache, now = queue["dedup_cache"], time.time()
    for key in list(takewhile(lambda key: cache[key]["expire"] <= now, cache)):
        del cache[key]


def apply() -> bool:
    """Patch MiniStack's SQS if it is the version this was written for; say so in its log otherwise."""
    from ministack.services import sqs

    version = metadata.version("ministack")
    if version != PATCHED_VERSION or not callable(getattr(sqs, "_prune_dedup", None)):
        print(f"emulator_patch: MiniStack {version} runs unpatched (written for {PATCHED_VERSION})", file=sys.stderr)
        return False
    sqs._prune_dedup = prune_expired
    return True


def main() -> int:
    apply()
    from ministack.app import main as ministack

    return int(ministack() or 0)


if __name__ == "__main__":
    sys.exit(main())
