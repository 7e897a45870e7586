"""Configuration read once per cold start; a missing variable fails loudly."""

from __future__ import annotations

import os
from dataclasses import dataclass


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


@dataclass(frozen=True)
class ApiSettings:
    table_name: str
    order_queue_url: str
    strict_documents: bool
    restock_queue_url: str

    @classmethod
    def from_env(cls) -> ApiSettings:
        return cls(
            _require("TABLE_NAME"),
            _require("ORDER_QUEUE_URL"),
            _flag("STRICT_DOCUMENTS"),
            _require("RESTOCK_QUEUE_URL"),
        )


def _count(name: str) -> int:
    value = _require(name)
    if not value.isdigit() or int(value) < 1:
        raise MissingSetting(f"environment variable {name} must be a whole number >= 1, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class FileSettings:
    table_name: str
    order_queue_url: str
    error_topic_arn: str
    strict_documents: bool
    file_queue_url: str
    max_receive_count: int
    restock_queue_url: str

    @classmethod
    def from_env(cls) -> FileSettings:
        return cls(
            _require("TABLE_NAME"),
            _require("ORDER_QUEUE_URL"),
            _require("ERROR_TOPIC_ARN"),
            _flag("STRICT_DOCUMENTS"),
            _require("FILE_QUEUE_URL"),
            _count("MAX_RECEIVE_COUNT"),
            _require("RESTOCK_QUEUE_URL"),
        )


@dataclass(frozen=True)
class ProcessorSettings:
    table_name: str
    pending_topic_arn: str
    error_topic_arn: str
    order_queue_url: str
    max_receive_count: int
    restock_queue_url: str

    @classmethod
    def from_env(cls) -> ProcessorSettings:
        return cls(
            _require("TABLE_NAME"),
            _require("PENDING_TOPIC_ARN"),
            _require("ERROR_TOPIC_ARN"),
            _require("ORDER_QUEUE_URL"),
            _count("MAX_RECEIVE_COUNT"),
            _require("RESTOCK_QUEUE_URL"),
        )


@dataclass(frozen=True)
class RestockSettings:
    table_name: str
    pending_topic_arn: str
    error_topic_arn: str
    restock_queue_url: str
    max_receive_count: int

    @classmethod
    def from_env(cls) -> RestockSettings:
        return cls(
            _require("TABLE_NAME"),
            _require("PENDING_TOPIC_ARN"),
            _require("ERROR_TOPIC_ARN"),
            _require("RESTOCK_QUEUE_URL"),
            _count("MAX_RECEIVE_COUNT"),
        )


@dataclass(frozen=True)
class SweeperSettings:
    table_name: str
    order_queue_url: str
    restock_queue_url: str
    stuck_after_seconds: int  # a claim older than this, still unfinished, is sent again
    passes: int  # sweeps per scheduled run (the schedule's finest grain is one minute)
    pass_gap_seconds: int

    @classmethod
    def from_env(cls) -> SweeperSettings:
        return cls(
            _require("TABLE_NAME"),
            _require("ORDER_QUEUE_URL"),
            _require("RESTOCK_QUEUE_URL"),
            _count("STUCK_AFTER_SECONDS"),
            _count("SWEEP_PASSES"),
            _count("SWEEP_GAP_SECONDS"),
        )
