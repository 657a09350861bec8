"""Presentation of answers: terminal text, JSON and minimal HTML (the engine itself returns `Answer`)."""
from __future__ import annotations

import html
import json
import re

from rag.types import Answer, Hit, Span, merge_spans

_CJK_CHAR = re.compile(r"[\u4e00-\u9fff]")
# Characters a terminal obeys instead of showing: C0 controls but tab and line feed, DEL, C1 controls (0x9b is CSI),
# and the bidirectional overrides that reorder what is shown ("Trojan Source", CVE-2021-42574).
_TERMINAL_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _visible(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def for_terminal(text: str) -> str:
    """Document text made safe to print: escape sequences and other controls shown as \\x1b etc., never obeyed."""
    return _TERMINAL_UNSAFE.sub(_visible, str(text).replace("\r\n", "\n"))


def json_for_terminal(data, indent: int | None = 2) -> str:
    """JSON whose strings carry no raw control characters (json escapes C0 itself; C1 and bidi marks are escaped
    here, which stays valid JSON because such characters can only stand inside strings); indent=None: one line."""
    return _TERMINAL_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}",
                                json.dumps(data, ensure_ascii=False, indent=indent))


# ---- output --------------------------------------------------------------------------------------------------------
ANSI_MARK = ("\x1b[1;33m", "\x1b[0m")
PLAIN_MARK = ("【", "】")


def mark_spans(text: str, spans: list[Span], marks: tuple[str, str] = PLAIN_MARK, escape=lambda piece: piece) -> str:
    """The text with each span wrapped in the open/close marks; `escape` applies to the text, never to the marks."""
    out, pos = [], 0
    for s, e in merge_spans([(max(0, s), min(len(text), e)) for s, e in spans]):
        out += [escape(text[pos:s]), marks[0], escape(text[s:e]), marks[1]]
        pos = e
    out.append(escape(text[pos:]))
    return "".join(out)


def citation_label(n: int, hit: Hit) -> str:
    """`[n] title · section · doc_id:start-end` (empty parts left out)."""
    parts = [p for p in (hit.title, hit.section) if p]
    parts.append(f"{hit.doc_id}:{hit.start}-{hit.end}")
    return f"[{n}] " + " · ".join(parts)


ANSI_UNSUPPORTED = ("\x1b[1;31m", "\x1b[0m")
PLAIN_UNSUPPORTED = ("⚠‹", "›")


def unsupported_spans(answer: Answer) -> list[Span]:
    """Where a written answer says what its cited passages do not back: the figure, or the whole sentence when
    its citation is missing or names no passage given."""
    spans: list[Span] = []
    text = answer.text or ""
    for st in answer.statements:
        if st.supported:
            continue
        if st.citation_fault:
            spans.append((st.start, st.end))
        for claim in st.failed:
            at = text.find(claim, st.start, st.end)
            if at >= 0:
                spans.append((at, at + len(claim)))
    return merge_spans(spans)


def check_line(answer: Answer, zh: bool) -> str:
    """One line on the check of a written answer."""
    if answer.verified:
        return ("（已核对：每句都有出处，数字均见于所引原文）" if zh else
                "(Checked: every sentence cites its passages and every figure stands in them.)")
    problems = "; ".join(f"{st.text.strip()[:60]} — {', '.join(st.problems)}" for st in answer.statements
                         if not st.supported)
    return ("（未通过核对，⚠标出的内容所引原文不支持：" if zh else
            "(Not verified: the parts marked ⚠ are not backed by the passages they cite: ") + problems + ("）" if zh else ")")


def _written_lines(answer: Answer, color: bool, zh: bool) -> list[str]:
    marks = ANSI_UNSUPPORTED if color else PLAIN_UNSUPPORTED
    lines = [("模型撰写：" if zh else "Written answer: ")
             + mark_spans(answer.text or "", unsupported_spans(answer), marks, for_terminal),
             for_terminal(check_line(answer, zh))]
    extracted = answer.extractive
    if extracted is not None and not answer.verified:
        shown = extracted.text if extracted.found else ("文档中未找到答案。" if zh else "Not found in the documents.")
        lines.append(for_terminal(("摘录答案：" if zh else "Extracted answer: ") + (shown or "")))
    return lines


def format_answer(answer: Answer, color: bool = False) -> str:
    """Terminal view: the answer (a written one with its check), then each citation with the answer spans marked."""
    marks = ANSI_MARK if color else PLAIN_MARK
    zh = bool(_CJK_CHAR.search(answer.question or ""))
    head = ""
    if answer.found:
        head = ("答：" if zh else "Answer: ") if answer.exact else ("原文：" if zh else "From the text: ")
    lines = [for_terminal(head + (answer.text or ""))]
    if answer.generated:
        lines = _written_lines(answer, color, zh)
    elif answer.note:
        lines.append(for_terminal(("（未使用语言模型：" if zh else "(Language model not used: ") + answer.note
                                  + ("）" if zh else ")")))
    if answer.citations:
        lines.append("")
    for n, hit in enumerate(answer.citations, 1):
        lines.append(for_terminal(citation_label(n, hit)))
        lines.append("    " + mark_spans(hit.text, hit.highlights, marks, for_terminal).replace("\n", "\n    "))
    return "\n".join(lines)


def answer_to_json(answer: Answer) -> dict:
    """A JSON-ready dict: the answer plus each citation with its highlight spans and their texts; a written
    answer adds its check (verified, unsupported, statements) and the extracted answer."""
    data = _answer_fields(answer)
    data["generated"] = answer.generated
    data["note"] = answer.note
    if answer.generated:
        data["verified"] = answer.verified
        data["unsupported"] = list(answer.unsupported)
        data["unsupported_spans"] = [list(s) for s in unsupported_spans(answer)]
        data["statements"] = [{
            "text": st.text, "start": st.start, "end": st.end, "citations": list(st.citations),
            "supported": st.supported, "problems": list(st.problems), "claims": list(st.claims),
            "support": [{"n": n, "start": s, "end": e, "text": answer.citations[n - 1].text[s:e]}
                        for n, s, e in st.support if 0 < n <= len(answer.citations)],
        } for st in answer.statements]
        data["extractive"] = answer_to_json(answer.extractive) if answer.extractive is not None else None
    return data


def _answer_fields(answer: Answer) -> dict:
    return {
        "question": answer.question,
        "completed_question": answer.completed_question or answer.question,
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
        body = mark_spans(hit.text, hit.highlights, ("<mark>", "</mark>"), html.escape)
        parts.append(f"<p><b>{html.escape(citation_label(n, hit))}</b><br>{body}</p>")
    return "\n".join(parts)

