"""Faithfulness: every number, date and name of an answer must stand in a highlighted span of a citation."""
from __future__ import annotations

import re

from rag.qa.extract import PROPER_ORG_RE, _org_spans, find_entities
from rag.patterns import QUANTITY_RE
from rag.types import Answer, Hit, Span

# ---- faithfulness ------------------------------------------------------------------------------------------------
CLAIM_NUMBER_RE = re.compile(r"(?<![A-Za-z\d])\d+(?:[.,]\d+)*(?![A-Za-z\d])")


def _name_spans(text: str, a: int = 0, b: int | None = None, only: str = "") -> list[Span]:
    """Person names, proper organisation names, document titles and numbers in text[a:b] (or one kind of them)."""
    b = len(text) if b is None else b
    spans = [(e.start, e.end) for kind in ("person", "document") if only in ("", kind)
             for e in find_entities(text, a, b, kind)]
    if only in ("", "organisation"):
        spans += _org_spans(text, a, b, PROPER_ORG_RE)
    return spans


def _claim_spans(text: str, a: int = 0, b: int | None = None, whole_figures: bool = False) -> list[Span]:
    """Every number, date, name and document reference in text[a:b]: what the faithfulness check verifies.

    With whole_figures a number is given with its unit (276人, 2.00%), which is where a clause may be cut.
    """
    b = len(text) if b is None else b
    numbers = [(m.start(), m.end()) for m in CLAIM_NUMBER_RE.finditer(text, a, b)]
    if whole_figures:
        figures = [(m.start(), m.end()) for m in QUANTITY_RE.finditer(text, a, b)]
        numbers = figures + [n for n in numbers if not any(s <= n[0] < e for s, e in figures)]
    return numbers + _name_spans(text, a, b)


def extract_claims(text: str) -> list[str]:
    """The checkable claims of an answer text."""
    return [text[s:e] for s, e in _claim_spans(text)]


def unsupported_claims(text: str, citations: list[Hit]) -> list[str]:
    """Claims of `text` that no highlighted span of any citation contains verbatim (empty list = faithful)."""
    highlighted = [hit.text[s:e] for hit in citations for s, e in hit.highlights]
    missing = []
    for claim in extract_claims(text):
        if CLAIM_NUMBER_RE.fullmatch(claim):
            pattern = re.compile(r"(?<![\d.,])" + re.escape(claim) + r"(?![\d]|[.,]\d)")
            ok = any(pattern.search(h) for h in highlighted)
        else:
            ok = any(claim in h for h in highlighted)
        if not ok:
            missing.append(claim)
    return missing


def is_faithful(answer: Answer) -> bool:
    """True when every number, date and name of a found answer lies in a highlighted cited span."""
    if not answer.found:
        return True
    if not answer.text or not any(h.highlights for h in answer.citations):
        return False
    return not unsupported_claims(answer.text, answer.citations)


