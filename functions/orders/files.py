"""Reading data-lake files: one order, a list of orders, {"orders": [...]}, or JSON Lines."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orders.model import FieldError
from orders.validation import NotJson, NotUtf8, parse_json, utf8_text

MAX_FILE_BYTES = 25 * 1024 * 1024
# The suffixes read, in any case. The bucket notifies every key under incoming/ and restock/ (S3's suffix filters
# are case-sensitive), so this is the one place that decides which files are read and which are ignored.
READ_SUFFIXES = (".json", ".jsonl")
ORDERS_PREFIX, RESTOCK_PREFIX = "incoming/", "restock/"  # the keys the template's bucket notifies
IGNORED = "arquivo ignorado: só são lidos arquivos terminados em .json ou .jsonl (em maiúsculas ou minúsculas)"


class FileRejected(Exception):
    """The whole file is unreadable as orders; the message says why, in Portuguese."""


@dataclass(frozen=True)
class Entry:
    """One order candidate of a file: its JSON value, or the error that kept it from being read."""

    document: Any = None
    error: FieldError | None = None


def is_read(key: str) -> bool:
    """Whether a key names a file the pipeline reads: .json or .jsonl, in any case."""
    return key.lower().endswith(READ_SUFFIXES)


def lake_key(name: str, restock: bool = False) -> str:
    """The key a file named `name` goes under: restock/ or incoming/, unless the name already starts there."""
    prefix, name = RESTOCK_PREFIX if restock else ORDERS_PREFIX, name.lstrip("/")
    return name if name.startswith(prefix) else prefix + name


def read_entries(key: str, data: bytes | None) -> list[Entry]:
    """Split a file into order candidates; raise FileRejected when nothing in it can be read (or it is ignored).
    `data` None: the file is larger than MAX_FILE_BYTES, and was not read."""
    if data is None or len(data) > MAX_FILE_BYTES:
        raise FileRejected(f"arquivo maior que o limite de {MAX_FILE_BYTES} bytes")
    if not is_read(key):
        raise FileRejected(IGNORED)
    try:
        text = utf8_text(data)  # the same rule and message as an API body's
    except NotUtf8 as exc:
        raise FileRejected(f"arquivo {exc}") from exc
    if not text.strip():
        raise FileRejected("arquivo vazio")
    if key.lower().endswith(".jsonl"):
        return _json_lines(text)
    try:
        content = parse_json(text)
    except NotJson as exc:
        raise FileRejected(str(exc)) from exc
    if isinstance(content, dict) and isinstance(content.get("orders"), list):
        documents = content["orders"]
    elif isinstance(content, dict):
        documents = [content]
    elif isinstance(content, list):
        documents = content
    else:
        raise FileRejected('o arquivo deve conter um pedido, uma lista de pedidos ou {"orders": [...]}')
    if not documents:
        raise FileRejected("arquivo sem pedidos")
    return [Entry(document=document) for document in documents]


def _json_lines(text: str) -> list[Entry]:
    entries = []
    # Only "\n" ends a line: str.splitlines would also split on U+2028 and others, which JSON strings may hold.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            entries.append(Entry(document=parse_json(line)))
        except NotJson as exc:
            entries.append(Entry(error=FieldError(f"(linha {number})", str(exc))))
    if not entries:
        raise FileRejected("arquivo sem pedidos")
    return entries
