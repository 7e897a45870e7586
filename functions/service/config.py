"""Configuration read once per cold start, into one frozen object per function; a missing variable fails loudly."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, Self


class MissingSetting(RuntimeError):
    pass


def _require(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise MissingSetting(f"environment variable {name} is not set")
    return value


def _flag(name: str) -> bool:
    value = _require(name).lower()
    if value not in {"true", "false"}:
        raise MissingSetting(f"environment variable {name} must be 'true' or 'false', got {value!r}")
    return value == "true"


def _count(name: str) -> int:
    value = _require(name)
    if not value.isdigit() or int(value) < 1:
        raise MissingSetting(f"environment variable {name} must be a whole number >= 1, got {value!r}")
    return int(value)


def env(name: str, read: Callable[[str], Any] = _require) -> Any:
    """A setting read from the environment variable `name` (a text, a flag or a count)."""
    return field(metadata={"env": name, "read": read})


@dataclass(frozen=True)
class Settings:
    """What every function reads."""

    table_name: str = env("TABLE_NAME")
    restock_queue_url: str = env("RESTOCK_QUEUE_URL")

    @classmethod
    def from_env(cls) -> Self:
        values: dict[str, Any] = {}
        problems: list[str] = []
        for f in fields(cls):
            try:
                values[f.name] = f.metadata["read"](f.metadata["env"])
            except MissingSetting as exc:
                problems.append(str(exc))
        if problems:
            raise MissingSetting("; ".join(problems))  # every one at once
        return cls(**values)


@dataclass(frozen=True)
class ApiSettings(Settings):
    order_queue_url: str = env("ORDER_QUEUE_URL")
    strict_documents: bool = env("STRICT_DOCUMENTS", _flag)


@dataclass(frozen=True)
class QueueSettings(Settings):
    """A function fed by a queue: its failures go back with a back-off, and to the error topic at the last try."""

    error_topic_arn: str = env("ERROR_TOPIC_ARN")
    max_receive_count: int = env("MAX_RECEIVE_COUNT", _count)


@dataclass(frozen=True)
class FileSettings(QueueSettings, ApiSettings):
    file_queue_url: str = env("FILE_QUEUE_URL")


@dataclass(frozen=True)
class RestockSettings(QueueSettings):
    pending_topic_arn: str = env("PENDING_TOPIC_ARN")


@dataclass(frozen=True)
class ProcessorSettings(RestockSettings):
    """The restocker's settings, and the orders queue."""

    order_queue_url: str = env("ORDER_QUEUE_URL")


@dataclass(frozen=True)
class SweeperSettings(Settings):
    order_queue_url: str = env("ORDER_QUEUE_URL")
    stuck_after_seconds: int = env("STUCK_AFTER_SECONDS", _count)  # a claim older than this, unsent, is sent again
    passes: int = env("SWEEP_PASSES", _count)  # sweeps per scheduled run (the schedule's finest grain is one minute)
    pass_gap_seconds: int = env("SWEEP_GAP_SECONDS", _count)
