"""sandbox.poll: the one wait-until of the tools and the e2e suite."""

from __future__ import annotations

import pytest

from sandbox.poll import TimedOut, wait_until


def test_it_returns_the_first_truthy_answer() -> None:
    answers = iter([None, 0, [], {"order_status": "Novo Pedido"}])

    assert wait_until(lambda: next(answers), timeout=5, interval=0) == {"order_status": "Novo Pedido"}


def test_it_gives_up_at_the_deadline_naming_what_and_the_last_answer() -> None:
    with pytest.raises(TimedOut, match=r"order ORD-1 not reached within 0 s; last: \[\]"):
        wait_until(lambda: [], timeout=0, what="order ORD-1")


def test_it_pauses_the_interval_between_two_asks(monkeypatch: pytest.MonkeyPatch) -> None:
    pauses: list[float] = []
    monkeypatch.setattr("sandbox.poll.time.sleep", pauses.append)
    answers = iter([None] * 3 + [True])

    wait_until(lambda: next(answers), timeout=60, interval=0.3)

    assert pauses == pytest.approx([0.3, 0.3, 0.3])


def test_only_the_named_exceptions_mean_not_yet() -> None:
    calls = iter([AssertionError("not yet"), "done"])

    def check() -> str:
        answer = next(calls)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert wait_until(check, timeout=5, interval=0, retry_on=(AssertionError,)) == "done"
    with pytest.raises(KeyError):
        wait_until(lambda: {}["missing"], timeout=5, interval=0, retry_on=(AssertionError,))
