"""Presentation of answers: terminal text, JSON and minimal HTML (the engine itself returns `Answer`)."""
from __future__ import annotations

import html
import re

from rag.types import Answer, Hit, Span, merge_spans

_CJK_CHAR = re.compile(r"[\u4e00-\u9fff]")
# ---- output --------------------------------------------------------------------------------------------------------
ANSI_MARK = ("\x1b[1;33m", "\x1b[0m")
PLAIN_MARK = ("【", "】")


def mark_spans(text: str, spans: list[Span], marks: tuple[str, str] = PLAIN_MARK) -> str:
    """The text with each span wrapped in the open/close marks."""
    out, pos = [], 0
    for s, e in merge_spans([(max(0, s), min(len(text), e)) for s, e in spans]):
        out += [text[pos:s], marks[0], text[s:e], marks[1]]
        pos = e
    out.append(text[pos:])
    return "".join(out)


def citation_label(n: int, hit: Hit) -> str:
    """`[n] title · section · doc_id:start-end` (empty parts left out)."""
    parts = [p for p in (hit.title, hit.section) if p]
    parts.append(f"{hit.doc_id}:{hit.start}-{hit.end}")
    return f"[{n}] " + " · ".join(parts)


def format_answer(answer: Answer, color: bool = False) -> str:
    """Terminal view: the answer, then each citation with the answer spans marked."""
    marks = ANSI_MARK if color else PLAIN_MARK
    zh = bool(_CJK_CHAR.search(answer.question or ""))
    head = ""
    if answer.found:
        head = ("答：" if zh else "Answer: ") if answer.exact else ("原文：" if zh else "From the text: ")
    lines = [head + (answer.text or "")]
    if answer.citations:
        lines.append("")
    for n, hit in enumerate(answer.citations, 1):
        lines.append(citation_label(n, hit))
        lines.append("    " + mark_spans(hit.text, hit.highlights, marks).replace("\n", "\n    "))
    return "\n".join(lines)


def answer_to_json(answer: Answer) -> dict:
    """A JSON-ready dict: the answer plus each citation with its highlight spans and their texts."""
    return {
        "question": answer.question,
        "answer": answer.text,
        "found": answer.found,
        "kind": answer.kind,
        "exact": answer.exact,
        "elapsed_ms": answer.elapsed_ms,
        "citations": [
            {
                "n": n,
                "doc_id": hit.doc_id,
                "title": hit.title,
                "section": hit.section,
                "start": hit.start,
                "end": hit.end,
                "score": hit.score,
                "text": hit.text,
                "highlights": [[s, e] for s, e in hit.highlights],
                "highlighted_text": [hit.text[s:e] for s, e in hit.highlights],
                "meta": {k: v for k, v in hit.meta.items() if _json_scalar(v)},
            }
            for n, hit in enumerate(answer.citations, 1)
        ],
    }


def _json_scalar(value) -> bool:
    return value is None or isinstance(value, (str, int, float, bool)) or (
        isinstance(value, (list, tuple)) and all(isinstance(v, (str, int, float, bool)) for v in value))


def answer_html(answer: Answer) -> str:
    """Minimal HTML of the answer and its marked citations (all source text escaped)."""
    parts = [f"<p>{html.escape(answer.text or '')}</p>"]
    for n, hit in enumerate(answer.citations, 1):
        body = mark_spans(hit.text, hit.highlights, ("\x00", "\x01"))
        body = html.escape(body).replace("\x00", "<mark>").replace("\x01", "</mark>")
        parts.append(f"<p><b>{html.escape(citation_label(n, hit))}</b><br>{body}</p>")
    return "\n".join(parts)

