"""What every reader shares: decoding, the Document factory, and how a skipped file is reported."""
from __future__ import annotations

import codecs
import hashlib
import json
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from rag.ingest.metadata import parse_reply
from rag.text import replace_surrogates
from rag.types import Document, Span

MAX_BYTES = 50 * 1024 * 1024
TEXT_SUFFIXES = (".txt", ".md")
SIDECAR_SUFFIX = ".rag.json"
WARN_PER_FILE = 5  # a table with many bad rows logs this many warnings, then one summary
CONFIDENT_CHAOS = 0.1  # charset-normalizer "mess" ratio below which its guess is accepted
UTF16_TEXT_SHARE = 0.98  # share of ordinary text characters a BOM-less UTF-16 reading must reach
UTF16_NUL_SKEW = 4  # NUL bytes on the high-byte side must outnumber the others this many times


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
    doc_id, text, title = replace_surrogates(doc_id), replace_surrogates(text), title and replace_surrogates(title)
    meta, meta_defaults = _clean_strings(meta), _clean_strings(meta_defaults)
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


def _clean_strings(value: Any) -> Any:
    """Metadata with lone surrogates replaced in every string (a JSONL field may hold a broken escape)."""
    if isinstance(value, str):
        return replace_surrogates(value)
    if isinstance(value, dict):
        return {_clean_strings(k): _clean_strings(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_clean_strings(v) for v in value)
    return value


# ---------------------------------------------------------------- decoding


def decode_bytes(data: bytes) -> str:
    """UTF-8 (BOM removed), else GB18030/GBK, else a confident charset-normalizer guess."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise Unreadable("undecodable UTF-16 text") from exc
    if b"\x00" in data:
        text = _bomless_utf16(data)
        if text is None:
            raise Unreadable("binary file (contains NUL bytes; if it is UTF-16 text, save it as UTF-8)")
        return text
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            pass
    return _guess_decode(data)


def _bomless_utf16(data: bytes) -> str | None:
    """UTF-16 text saved without a byte-order mark (some Windows tools do), else None. Two signs must agree: the NUL
    bytes stand on one side of the byte pairs (the high byte of line breaks, digits and Latin letters; a CJK
    character has a NUL byte rarely, U+4E00 一 for one), and the decoding reads as text (binary data decodes to
    unassigned or private-use characters and controls)."""
    if len(data) % 2:
        return None
    even, odd = data[0::2].count(0), data[1::2].count(0)
    encoding = "utf-16-le" if odd > UTF16_NUL_SKEW * even else "utf-16-be" if even > UTF16_NUL_SKEW * odd else None
    if encoding is None:
        return None
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        return None
    share = sum(1 for ch in text if _reads_as_text(ch)) / max(1, len(text))
    return text if share >= UTF16_TEXT_SHARE else None


def _reads_as_text(ch: str) -> bool:
    """A character of ordinary text: letters, numbers, punctuation, symbols, spaces and line breaks."""
    return ch in "\r\n\t" or unicodedata.category(ch)[0] in "LNPSZ" and unicodedata.category(ch) not in ("Co", "Cn")


def _guess_decode(data: bytes) -> str:
    """charset-normalizer's best guess, accepted only when it reads as clean text."""
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    wide = best is not None and best.encoding.startswith(("utf_16", "utf_32"))  # BOM-less: a wild guess
    if best is None or wide or best.chaos > CONFIDENT_CHAOS:
        raise Unreadable("undecodable text: not UTF-8 or GB18030, and no confident encoding guess")
    return str(best)
