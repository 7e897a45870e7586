"""The report of one data-lake file: what was received, accepted and rejected, and why."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from orders.masking import mask_document
from orders.model import FieldError


@dataclass(frozen=True)
class Rejection:
    index: int
    order_id: str | None
    errors: tuple[FieldError, ...]

    def as_dict(self, kind: str = "orders") -> dict[str, Any]:
        # A rejected restock line is named by its product; a rejected order by its order_id.
        name = "product_id" if kind == "restocks" else "order_id"
        return {"index": self.index, name: self.order_id, "errors": [e.as_dict() for e in self.errors]}


@dataclass
class FileReport:
    bucket: str
    key: str
    kind: str = "orders"  # or "restocks": what the file's entries are
    accepted: list[str] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    file_error: str | None = None
    timings: dict[str, float] = field(
        default_factory=lambda: dict.fromkeys(
            ("read_seconds", "validate_seconds", "claim_seconds", "enqueue_seconds"), 0.0
        )
    )

    @property
    def received(self) -> int:
        return len(self.accepted) + len(self.rejections)

    @property
    def has_problems(self) -> bool:
        return bool(self.rejections) or self.file_error is not None

    def reject(self, index: int, order_id: Any, errors: list[FieldError] | tuple[FieldError, ...]) -> None:
        if isinstance(order_id, str):
            # An order_id is echoed as given, but must still be writable as UTF-8 (no lone surrogates).
            order_id = order_id.encode("utf-8", "backslashreplace").decode("utf-8")[:200]
        else:
            order_id = None
        self.rejections.append(Rejection(index, order_id, tuple(errors)))

    def part(self) -> dict[str, Any]:
        """What one chunk of the file came to, unmasked, to be kept until the file is finished (see `absorb`)."""
        return {
            "accepted": list(self.accepted),
            "rejections": [r.as_dict() for r in self.rejections],
            "timings": dict(self.timings),
        }

    def absorb(self, part: dict[str, Any]) -> None:
        """Add a chunk's outcome (`part()`, possibly kept by an earlier invocation) to this report."""
        self.accepted += [str(order_id) for order_id in part["accepted"]]
        for r in part["rejections"]:
            errors = tuple(FieldError(str(e["field"]), str(e["message"])) for e in r["errors"])
            self.rejections.append(Rejection(int(r["index"]), r["order_id"], errors))
        for name, seconds in part["timings"].items():
            self.timings[name] = self.timings.get(name, 0.0) + float(seconds)

    def as_dict(self) -> dict[str, Any]:
        """The report as written to S3 and published: ids shaped like personal data are masked."""
        body = {
            "event": "file_report",
            "kind": self.kind,
            "bucket": self.bucket,
            "key": self.key,
            "received": self.received,
            "accepted": len(self.accepted),
            "rejected": len(self.rejections),
            "file_error": self.file_error,
            f"accepted_{'restock' if self.kind == 'restocks' else 'order'}_ids": self.accepted,
            "rejections": [r.as_dict(self.kind) for r in self.rejections],
            "timings": {name: round(seconds, 3) for name, seconds in self.timings.items()},
        }
        masked: dict[str, Any] = mask_document(body)
        return masked


_ETAG = re.compile(r"([0-9a-f]{32})(?:-[0-9]+)?")


def report_key(key: str, tag: str) -> str:
    """reports/<the file's whole key>.<version>.report.json: the one place a file's report is named.

    A file is its key and its content (or version), as the file validator identifies it: `tag` is the S3
    eTag (bare, as S3 events carry it, or quoted, as PutObject answers it) or the version id. The whole key
    keeps `restock/x.json` and `incoming/restock/x.json` apart; the version keeps a re-upload from
    overwriting the earlier content's report. The version is 12 hex digits: the start of the eTag a user sees in
    `head-object`, else of a digest of the version id.
    """
    match = _ETAG.fullmatch(tag.strip().strip('"').lower())
    version = (match.group(1) if match else hashlib.sha256(tag.encode("utf-8")).hexdigest())[:12]
    return f"reports/{key}.{version}.report.json"
