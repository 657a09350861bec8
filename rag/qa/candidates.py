"""Candidate clauses: every sentence and clause of the top passages, with exact offsets into the passage."""
from __future__ import annotations

import re
from dataclasses import dataclass

from rag.types import Hit

SCAN_HITS = 8  # retrieved paragraphs split into clauses

HEADING_RE = re.compile(r"^\s*(?:[一二三四五六七八九十]+、|[(（][一二三四五六七八九十\d]+[)）]|\d{1,2}[.、](?!\d))")
LEAD_RE = re.compile(r"^\s*(?:[一二三四五六七八九十]+是|首先|其次|再次|最后)")
LEAD_ORDINAL_RE = re.compile(r"^\s*([一二三四五六七八九十]+)是")
SENTENCE_END = "。！？!?；;\n"
_CJK_CHAR = re.compile(r"[\u4e00-\u9fff]")
_CJK_ONLY = re.compile(r"[\u4e00-\u9fff]+")


@dataclass
class Piece:
    """A clause of a retrieved paragraph, with its sentence; offsets are relative to the hit's text."""

    hit: int
    start: int
    end: int
    sent_start: int
    sent_end: int



# ---- splitting ---------------------------------------------------------------------------------------------
def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans (delimiter included, surrounding spaces trimmed)."""
    spans = []
    start = 0
    for i, ch in enumerate(text):
        is_end = ch in SENTENCE_END
        if ch == "." and (i + 1 == len(text) or text[i + 1] == " ") and not (i > 0 and text[i - 1].isdigit()):
            is_end = True
        if is_end:
            spans.append((start, i + 1))
            start = i + 1
    if start < len(text):
        spans.append((start, len(text)))
    return [s for s in (_trim(text, a, b) for a, b in spans) if s[1] > s[0] and _has_content(text[s[0]:s[1]])]


def split_clauses(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Clause spans inside a sentence: cut at '，' and at ASCII ',' unless between digits (1,000), not in brackets."""
    cuts = [start]
    depth = 0
    for i in range(start, end):
        ch = text[i]
        if ch in "(（":
            depth += 1
        elif ch in ")）":
            depth = max(0, depth - 1)
        elif depth == 0 and (ch == "，" or (ch == "," and not (0 < i < len(text) - 1 and text[i - 1].isdigit()
                                                                and text[i + 1].isdigit()))):
            cuts.append(i + 1)
    cuts.append(end)
    spans = []
    for a, b in zip(cuts, cuts[1:]):
        a, b = _trim(text, a, b)
        while b > a and text[b - 1] in "，,。；;！？!?\n ":
            b -= 1
        if b > a and _has_content(text[a:b]):
            spans.append((a, b))
    return spans


def _trim(text: str, a: int, b: int) -> tuple[int, int]:
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    return a, b


def _has_content(s: str) -> bool:
    return bool(re.search(r"[A-Za-z0-9\u4e00-\u9fff]", s))


def is_heading(sentence: str) -> bool:
    """A numbered heading line (一、… (二)…) names a topic; it never answers a question by itself."""
    return bool(HEADING_RE.match(sentence)) and len(sentence) <= 60


def pieces_of(hits: list[Hit], limit: int = SCAN_HITS) -> list[Piece]:
    """Every clause of the first `limit` hits (headings left out), with the sentence it belongs to."""
    out = []
    for h, hit in enumerate(hits[:limit]):
        for s_start, s_end in split_sentences(hit.text):
            if is_heading(hit.text[s_start:s_end]):
                continue
            for c_start, c_end in split_clauses(hit.text, s_start, s_end):
                out.append(Piece(h, c_start, c_end, s_start, s_end))
    return out


