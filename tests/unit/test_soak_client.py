"""The chaos soak's HTTP client retries what a real client retries: a 5xx or a dropped connection, same body."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import requests

from sandbox import soak


class FakeHttp:
    """Answers each POST with the next of `answers` (a status, or an exception to raise); records the bodies."""

    def __init__(self, *answers: int | Exception) -> None:
        self.answers = list(answers)
        self.bodies: list[Any] = []

    def post(self, url: str, timeout: float, **kwargs: Any) -> SimpleNamespace:
        self.bodies.append(kwargs.get("json"))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return SimpleNamespace(status_code=answer)


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    monkeypatch.setattr(soak.time, "sleep", lambda seconds: None)


def test_a_5xx_and_a_dropped_connection_are_retried_with_the_same_body():
    http = FakeHttp(502, requests.ConnectionError("reset by peer"), 202)
    assert soak._post(http, "http://api/orders", 5, json={"order_id": "A"}) == (202, 2)
    assert http.bodies == [{"order_id": "A"}] * 3


def test_a_4xx_is_an_answer_not_retried():
    http = FakeHttp(400)
    assert soak._post(http, "http://api/orders", 5, json={}) == (400, 0)


def test_after_the_last_attempt_the_client_gives_up():
    http = FakeHttp(503, 503, requests.Timeout())
    assert soak._post(http, "http://api/orders", 3, json={}) == (None, 3)
