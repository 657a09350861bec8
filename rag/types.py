"""Small dataclasses carried between the pipeline stages (documents → chunks → index → hits → answers)."""
from __future__ import annotations

import reprlib
from dataclasses import asdict, dataclass, field
from typing import Any

Span = tuple[int, int]


def merge_spans(spans: list[Span]) -> list[Span]:
    """Sorted spans with overlapping or touching ones joined, so highlights never nest."""
    merged: list[Span] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


@dataclass
class Document:
    """One source document; `text` is stored exactly as read so offsets stay valid."""

    doc_id: str  # path relative to the corpus folder (POSIX); tabular rows: "file.xlsx#<row id>"
    text: str
    title: str = ""
    meta: dict[str, Any] = field(default_factory=dict)  # issuer, publish_date (ISO), proposal_number, ...
    content_spans: list[Span] = field(default_factory=list)  # body ranges; page chrome lies outside them
    page_starts: list[int] = field(default_factory=list)  # PDF: offset where page i+1 begins
    content_hash: str = ""  # sha256 of text + title + meta, for incremental builds

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Document":
        data = dict(data)
        data["content_spans"] = [tuple(s) for s in data.get("content_spans", [])]
        return cls(**data)


@dataclass
class Chunk:
    """A retrievable paragraph: `document.text[start:end] == text`."""

    doc_id: str
    chunk_id: int  # position within its document
    text: str
    start: int
    end: int
    section: str = ""  # heading path, e.g. "二、大力推动电子信息产业发展 > （一）创新主体规模不断壮大。"
    meta: dict[str, Any] = field(default_factory=dict)  # e.g. {"page": 3}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Chunk":
        return cls(**data)


@dataclass
class Hit:
    """One retrieved paragraph with everything needed to cite it."""

    doc_id: str
    title: str
    section: str
    text: str
    start: int
    end: int
    score: float
    meta: dict[str, Any] = field(default_factory=dict)  # document metadata + chunk metadata + ranks
    highlights: list[Span] = field(default_factory=list)  # spans inside `text` that make up an answer

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Statement:
    """One sentence of a written answer, checked against the passages it cites (the user sees which fail and why)."""

    text: str
    start: int  # offsets in the written answer
    end: int
    citations: list[int] = field(default_factory=list)  # its [n] markers, 1-based
    supported: bool = False
    problems: list[str] = field(default_factory=list)  # why not: no citation, [7] names no passage, 1234家 not in [1]
    claims: list[str] = field(default_factory=list)  # the figures, dates, numbers and quotes it was checked for
    failed: list[str] = field(default_factory=list)  # the claims no cited passage backs
    support: list[tuple[int, int, int]] = field(default_factory=list)  # (n, start, end) in citation n's text

    @property
    def citation_fault(self) -> bool:
        """Whether a problem lies with the sentence as a whole (its citation, or nothing shared with it), beyond
        the figures in `failed`: then the whole sentence is what is unsupported."""
        return len(self.failed) < len(self.problems)


@dataclass
class Answer:
    """What a user gets back: the answer in the source's own words, or an honest not-found."""

    question: str
    text: str | None
    found: bool
    citations: list[Hit] = field(default_factory=list)
    kind: str = ""  # quantity, person, organisation, date, document, list, reason, yesno, other
    elapsed_ms: float = 0.0
    exact: bool = True  # False: no exact value was found, the answer is the source sentence that says it
    completed_question: str = ""  # what was searched: the question completed from the conversation (or as asked)
    generated: bool = False  # written by the configured language model (then text cites [n] = citations[n-1])
    verified: bool | None = None  # generated: every statement backed by the passages it cites
    unsupported: list[str] = field(default_factory=list)  # generated: the figures or sentences no cited passage backs
    statements: list[Statement] = field(default_factory=list)  # generated: each sentence with its check
    extractive: "Answer | None" = None  # generated: the extracted answer, shown beside one that fails the check
    note: str = ""  # one line on the language model: why its answer is not shown, or that it was not configured

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RagError(Exception):
    """A problem the user can fix; the message says what and how."""


MAX_SHOWN_VALUE = 80  # characters of a user's value (an id, a mode, a date) quoted back in an error message
_SHORT_REPR = reprlib.Repr()
_SHORT_REPR.maxstring = _SHORT_REPR.maxother = MAX_SHOWN_VALUE


def shown(value: Any) -> str:
    """A user's value quoted in an error: repr (control characters stay escaped), never more than a line."""
    if isinstance(value, str) and len(value) > MAX_SHOWN_VALUE:
        return f"{value[:MAX_SHOWN_VALUE]!r}… ({len(value):,} characters)"
    return _SHORT_REPR.repr(value)


class IndexLoadError(RagError):
    """The index on disk is missing, corrupted, or incompatible."""


class QuestionTooLong(RagError):
    """A question beyond the input cap: a pasted document or an attack, refused before any work is done."""
