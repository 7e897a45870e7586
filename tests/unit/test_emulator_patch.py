"""Our MiniStack patch prunes a FIFO queue's deduplication cache exactly as MiniStack does, only without reading it
all, and it applies to the pinned MiniStack."""

from __future__ import annotations

import time
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ministack.services import sqs

from sandbox import emulator_patch

ORIGINAL_PRUNE = sqs._prune_dedup


def _queue(sent_at: list[float]) -> dict[str, object]:
    """A queue whose messages were sent at these instants, in this order: the cache MiniStack's send writes."""
    return {"dedup_cache": {f"m{n}": {"expire": at + sqs._DEDUP_WINDOW_S, "id": n} for n, at in enumerate(sent_at)}}


@given(
    gaps=st.lists(st.floats(min_value=0, max_value=120), max_size=40),
    age=st.floats(min_value=0, max_value=sqs._DEDUP_WINDOW_S * 2),
)
def test_pruning_keeps_what_ministack_keeps(gaps: list[float], age: float) -> None:
    # Given messages sent over the last `age` seconds, with the given gaps between them
    now = time.time()
    sent_at, at = [], now - age
    for gap in gaps:
        at += gap
        sent_at.append(min(at, now))
    ours, theirs = _queue(sent_at), _queue(sent_at)
    # When both prune
    with mock.patch.object(time, "time", return_value=now):
        emulator_patch.prune_expired(ours)
        ORIGINAL_PRUNE(theirs)
    # Then the same entries are left, in the same order
    assert list(ours["dedup_cache"].items()) == list(theirs["dedup_cache"].items())  # type: ignore[attr-defined]


def test_it_patches_the_pinned_ministack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqs, "_prune_dedup", ORIGINAL_PRUNE)
    assert emulator_patch.apply()
    assert sqs._prune_dedup is emulator_patch.prune_expired


def test_another_version_runs_unpatched(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sqs, "_prune_dedup", ORIGINAL_PRUNE)
    monkeypatch.setattr(emulator_patch.metadata, "version", lambda name: "9.9.9")
    assert not emulator_patch.apply()
    assert sqs._prune_dedup is ORIGINAL_PRUNE
    assert "MiniStack 9.9.9 runs unpatched" in capsys.readouterr().err
