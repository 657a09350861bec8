"""What every reader shares: decoding, the Document factory, and how a skipped file is reported."""
from __future__ import annotations

import codecs
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from rag.ingest.metadata import parse_reply
from rag.types import Document, Span

MAX_BYTES = 50 * 1024 * 1024
TEXT_SUFFIXES = (".txt", ".md")
SIDECAR_SUFFIX = ".rag.json"
WARN_PER_FILE = 5  # a table with many bad rows logs this many warnings, then one summary
CONFIDENT_CHAOS = 0.1  # charset-normalizer "mess" ratio below which its guess is accepted


@dataclass
class SkippedFile:
    """A file (or tabular row, "file#id") that was not loaded, and why."""

    path: str
    reason: str


@dataclass
class LoadResult:
    """Documents read from a corpus plus everything that was skipped."""

    documents: list[Document] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)

    def extend(self, other: "LoadResult") -> None:
        self.documents.extend(other.documents)
        self.skipped.extend(other.skipped)


class Unreadable(Exception):
    """Raised by a reader for a file it must skip; the message is the user-facing reason."""


# ---------------------------------------------------------------- documents


def content_hash(text: str, title: str, meta: dict[str, Any]) -> str:
    """sha256 over text, title and meta, so an incremental build sees any change."""
    digest = hashlib.sha256()
    for part in (text, title, json.dumps(meta, sort_keys=True, ensure_ascii=False, default=str)):
        digest.update(part.encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()


def make_document(
    doc_id: str,
    text: str,
    title: str | None = None,
    meta: dict[str, Any] | None = None,
    content_spans: list[Span] | None = None,
    page_starts: list[int] | None = None,
    meta_defaults: dict[str, Any] | None = None,
) -> Document:
    """A Document with reply metadata parsed from the text.

    Precedence: `meta` > parsed from the text > `meta_defaults`; an explicit title wins too.
    """
    parsed_title, parsed_meta, parsed_spans = parse_reply(text)
    merged = {**(meta_defaults or {}), **parsed_meta, **(meta or {})}
    if "date" not in (meta or {}):
        merged.pop("date", None)
        date = merged.get("publish_date") or merged.get("sign_date")
        if date:
            merged["date"] = date
    final_title = title or parsed_title
    return Document(
        doc_id=doc_id,
        text=text,
        title=final_title,
        meta=merged,
        content_spans=list(content_spans if content_spans is not None else parsed_spans),
        page_starts=list(page_starts or []),
        content_hash=content_hash(text, final_title, merged),
    )


# ---------------------------------------------------------------- decoding


def decode_bytes(data: bytes) -> str:
    """UTF-8 (BOM removed), else GB18030/GBK, else a confident charset-normalizer guess."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise Unreadable("undecodable UTF-16 text") from exc
    if b"\x00" in data:
        raise Unreadable("binary file (contains NUL bytes)")
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            pass
    return _guess_decode(data)


def _guess_decode(data: bytes) -> str:
    """charset-normalizer's best guess, accepted only when it reads as clean text."""
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    wide = best is not None and best.encoding.startswith(("utf_16", "utf_32"))  # BOM-less: a wild guess
    if best is None or wide or best.chaos > CONFIDENT_CHAOS:
        raise Unreadable("undecodable text: not UTF-8 or GB18030, and no confident encoding guess")
    return str(best)
