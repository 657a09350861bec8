"""Pure functions that turn answers, hits and documents into escaped HTML, Markdown and JSON for the web chat.

Every piece of document or user text is passed through `html.escape` before any tag of ours is added,
so markup inside a document (`<script>`, `<img onerror=…>`) is shown as text, never run.
"""
from __future__ import annotations

import re
from html import escape
from typing import Any, Iterable

from rag.generation.written import strip_thinking
from rag.search.retrieval import document_date  # noqa: F401 - ui.app imports it from here
from rag.types import Answer, Document, Hit, merge_spans

Span = tuple[int, int]

# Metadata shown in the document viewer, in this order; other short string fields follow.
META_LABELS: dict[str, str] = {
    "issuer": "发布单位 Issuer",
    "publish_date": "发布日期 Published",
    "sign_date": "落款日期 Signed",
    "doc_number": "文号 Doc no.",
    "proposal_number": "提案号 Proposal no.",
    "addressee": "收件人 Addressee",
    "signer": "签发 Signer",
    "source": "来源 Source",
    "result": "办理结果 Result",
    "contact_person": "联系人 Contact",
    "contact_phone": "电话 Phone",
    "cc": "抄送 Cc",
    "page": "页 Page",
}
HIDDEN_META = {"date", "chunk_id", "bm25_rank", "dense_rank", "content_hash"}
MAX_META_CHARS = 120
CITED_ID = "rag-cited"
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>$])")


# ---- spans ------------------------------------------------------------------------------------
def clamp_spans(spans: Iterable[Iterable[int]], length: int) -> list[Span]:
    """Clamp spans to [0, length], drop empty ones and merge overlaps, so the HTML nests correctly."""
    clean = []
    for span in spans or ():
        try:
            start, end = (int(v) for v in span)
        except (TypeError, ValueError):
            continue
        start, end = max(0, start), min(length, end)
        if start < end:
            clean.append((start, end))
    return merge_spans(clean)


def highlight_html(text: str, spans: Iterable[Iterable[int]] = ()) -> str:
    """Escaped text with each span wrapped in <mark>; segments are escaped one by one between offsets."""
    out: list[str] = []
    position = 0
    for start, end in clamp_spans(spans, len(text)):
        out.append(escape(text[position:start]))
        out.append(f"<mark>{escape(text[start:end])}</mark>")
        position = end
    out.append(escape(text[position:]))
    return "".join(out)


# ---- metadata ---------------------------------------------------------------------------------
def meta_rows(meta: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value) pairs worth showing: known fields first, then other short scalar fields."""
    rows = [(label, str(meta[key])) for key, label in META_LABELS.items() if meta.get(key) not in (None, "")]
    for key, value in meta.items():
        if key in META_LABELS or key in HIDDEN_META or isinstance(value, (dict, list)) or value in (None, ""):
            continue
        if len(str(value)) <= MAX_META_CHARS:
            rows.append((key, str(value)))
    return rows


def _source_line(meta: dict[str, Any]) -> str:
    parts = [meta.get("issuer") or "", document_date(meta)]
    return " · ".join(escape(str(p)) for p in parts if p)


# ---- sources panel ----------------------------------------------------------------------------
def source_card_html(number: int, hit: Hit) -> str:
    """One citation: title, issuer and date, section, the paragraph with answer spans marked, score."""
    title = escape(hit.title or hit.doc_id)
    section = f'<div class="src-section">§ {escape(hit.section)}</div>' if hit.section else ""
    origin = _source_line(hit.meta)
    page = f" · p. {escape(str(hit.meta['page']))}" if hit.meta.get("page") else ""
    return (
        f'<div class="src-card" data-cite="{number - 1}" tabindex="0" role="button" '
        f'title="Show this paragraph in the whole document">'
        f'<div class="src-head"><span class="src-num">[{number}]</span> <span class="src-title">{title}</span></div>'
        f'<div class="src-meta">{origin}{page} · <span class="src-score">score {hit.score:.4f}</span></div>'
        f"{section}"
        f'<div class="src-text">{highlight_html(hit.text, hit.highlights)}</div>'
        f"</div>"
    )


def sources_html(answer: Answer | None) -> str:
    """The sources panel: a not-found banner when there is no answer, then one card per citation."""
    if answer is None:
        return ('<div class="src-list src-empty"><div class="panel-title">Sources 出处</div>'
                'Sources appear here: each cited paragraph with the answer highlighted. '
                'Click one to open the whole document.<br>回答的出处会显示在这里，点击可查看全文。</div>')
    parts = ['<div class="panel-title">Sources 出处</div>']
    if not answer.found:
        parts.append('<div class="not-found" role="status"><b>Not found in the documents</b> · 文档中未找到答案'
                     '<br><span>Closest paragraphs (最接近的段落):</span></div>')
    if not answer.citations:
        parts.append('<div class="src-none">No paragraph matches this question and these filters.</div>')
    parts.extend(source_card_html(n, hit) for n, hit in enumerate(answer.citations, 1))
    return '<div class="src-list">' + "".join(parts) + "</div>"


def writing_sources_html() -> str:
    """The sources panel while a written answer streams in: its passages are listed once it is checked."""
    return ('<div class="src-list src-empty"><div class="panel-title">Sources 出处</div>'
            'The passages the answer is written from appear here once it is checked.<br>'
            '答案核对后，此处列出其所依据的段落。</div>')


# ---- document viewer --------------------------------------------------------------------------
def document_body_html(text: str, start: int | None = None, end: int | None = None,
                       spans: Iterable[Iterable[int]] = ()) -> str:
    """The whole text escaped; the cited range [start, end) gets an anchor id and its spans (relative) get <mark>."""
    if start is None or end is None:
        return escape(text)
    start, end = max(0, int(start)), min(len(text), int(end))
    if start >= end:
        return escape(text)
    return (escape(text[:start]) + f'<span class="cited" id="{CITED_ID}">'
            + highlight_html(text[start:end], spans) + "</span>" + escape(text[end:]))


def document_html(doc: Document, start: int | None = None, end: int | None = None,
                  spans: Iterable[Iterable[int]] = ()) -> str:
    """The document viewer: title, metadata table, then the full text with the cited paragraph marked."""
    rows = "".join(f"<tr><th>{escape(label)}</th><td>{escape(value)}</td></tr>"
                   for label, value in meta_rows(doc.meta))
    return (
        '<div class="doc-view"><div class="panel-title">Document 原文</div>'
        f'<div class="doc-title">{escape(doc.title or doc.doc_id)}</div>'
        f'<div class="doc-id">{escape(doc.doc_id)}</div>'
        f'<table class="doc-meta">{rows}</table>'
        f'<div class="doc-text">{document_body_html(doc.text, start, end, spans)}</div>'
        "</div>"
    )


def empty_document_html() -> str:
    """The document viewer before any source is opened."""
    return ('<div class="doc-view doc-empty"><div class="panel-title">Document 原文</div>'
            'Click a source to read the whole document here, with the cited paragraph highlighted.<br>'
            '点击左侧出处查看全文。</div>')


# ---- chat -------------------------------------------------------------------------------------
def markdown_escape(text: str) -> str:
    """Text that Markdown shows literally: HTML escaped, then Markdown punctuation backslash-escaped."""
    return _MD_SPECIAL.sub(r"\\\1", escape(text, quote=False))


def supporting_citations(answer: Answer) -> list[int]:
    """Numbers (1-based) of the citations whose highlights make up the answer."""
    return [n for n, hit in enumerate(answer.citations, 1) if hit.highlights]


def _quotes(hit: Hit, line: str) -> bool:
    """Whether a line of the answer contains one of the hit's highlighted spans."""
    return any(hit.text[a:b].strip() and hit.text[a:b].strip() in line for a, b in hit.highlights)


def _numbering(answer: Answer, shown: list[Hit] | None) -> dict[int, int]:
    """Citation n of the answer -> the number the reader sees it under: its own, or its place among `shown` (the
    sources panel of a written answer, beside which the extracted one is quoted); absent there, no marker."""
    if shown is None:
        return {n: n for n in range(1, len(answer.citations) + 1)}
    places = {(h.doc_id, h.start, h.end): n for n, h in reversed(list(enumerate(shown, 1)))}
    return {n: places[key] for n, h in enumerate(answer.citations, 1) if (key := (h.doc_id, h.start, h.end)) in places}


def with_markers(answer: Answer, shown: list[Hit] | None = None) -> str:
    """The answer text with [n] after each line, naming the citations whose highlighted words that line quotes;
    `shown`: number them as in that list of citations instead of the answer's own."""
    numbering = _numbering(answer, shown)
    supporting = supporting_citations(answer)
    out, used = [], set()
    for line in (answer.text or "").split("\n"):
        numbers = [n for n in supporting if _quotes(answer.citations[n - 1], line)] if line.strip() else []
        used.update(numbers)
        out.append(line + "".join(f" [{numbering[n]}]" for n in numbers if n in numbering))
    missing = [n for n in supporting if n not in used and n in numbering]
    if missing:  # spans the line test could not place (e.g. joined across lines): cite them at the end
        out[-1] = out[-1] + "".join(f" [{numbering[n]}]" for n in missing)
    return "\n".join(out)


SENTENCE_NOTE = "The passage that answers it (no exact value extracted) · 原文中回答该问题的句子"
WRITING_NOTE = "撰写中，尚未核对 Writing… not checked yet"
CHECKED_LINE = "✓ 已核对 Checked: every figure stands in the cited passages"
NOT_VERIFIED_LINE = "⚠ 未通过核对 Not verified"
EXTRACTED_LABEL = "摘录答案 Extracted answer"
NOT_USED_LABEL = "模型未使用 Language model not used"
# Around what a written answer says that its cited passages do not back. Our own tag: every character of the text
# inside and around it went through markdown_escape, which turns each < of the text into &lt;, so this is the only
# markup in the reply; the ⚠ inside stays visible even where a renderer drops the tag. (Markdown emphasis would
# not do: ** next to Chinese text and punctuation often fails CommonMark's flanking rules and shows as **.)
UNSUPPORTED_OPEN = '<mark class="unsupported" title="not in the cited passages 所引原文中没有">⚠ '
UNSUPPORTED_CLOSE = "</mark>"


def answer_markdown(answer: Answer) -> str:
    """The chat reply: the question as it was understood (when completed from the conversation), then the answer
    with [n] markers, or an honest not-found; a written answer with its check; escaped for Markdown."""
    completed = answer.completed_question
    if answer.generated:
        body = written_markdown(answer)
    else:
        body = _answer_body(answer) + (f"\n\n*{NOT_USED_LABEL}: {markdown_escape(answer.note)}*" if answer.note else "")
    if completed and completed != answer.question:  # the user sees what was searched and can correct it
        return f"*已理解为 Understood as：{markdown_escape(completed)}*\n\n" + body
    return body


def _answer_body(answer: Answer, shown: list[Hit] | None = None) -> str:
    if answer.found and answer.text:
        body = markdown_escape(with_markers(answer, shown))
        if not answer.exact:  # no exact value was found: say that this is the source sentence, not an extracted fact
            return f"*{SENTENCE_NOTE}*\n\n{body}"
        return body
    closest = " The closest paragraphs are listed under Sources." if answer.citations else ""
    return f"**Not found in the documents.** 文档中未找到答案。{closest}"


def marked_markdown(text: str, spans: Iterable[Iterable[int]]) -> str:
    """Text escaped for Markdown with each span marked unsupported (⚠, and a tag the chat's CSS colours); a span
    is marked line by line, so no tag ever spans a line break."""
    out: list[str] = []
    position = 0
    for start, end in clamp_spans(spans, len(text)):
        out.append(markdown_escape(text[position:start]))
        out.append("\n".join(f"{UNSUPPORTED_OPEN}{markdown_escape(part)}{UNSUPPORTED_CLOSE}" if part.strip()
                              else markdown_escape(part) for part in text[start:end].split("\n")))
        position = end
    out.append(markdown_escape(text[position:]))
    return "".join(out)


def check_markdown(answer: Answer) -> str:
    """The line under a written answer: checked, or not verified with each failing sentence and why."""
    if answer.verified:
        return CHECKED_LINE
    lines = [f"**{NOT_VERIFIED_LINE}**"]
    for statement in answer.statements:
        if not statement.supported:
            sentence = statement.text.strip()
            sentence = sentence if len(sentence) <= 80 else sentence[:79] + "…"
            problems = "; ".join(statement.problems) or "not backed by the passages it cites"
            lines.append(f"- 「{markdown_escape(sentence)}」: {markdown_escape(problems)}")
    return "\n".join(lines)


def written_markdown(answer: Answer) -> str:
    """A written answer: its text with the [n] markers the model wrote and the unsupported parts marked, the check,
    and when it fails the extracted answer beside it (numbered as the sources panel, which lists the passages the
    model was given)."""
    from rag.present import unsupported_spans

    parts = [marked_markdown(answer.text or "", unsupported_spans(answer)), check_markdown(answer)]
    if not answer.verified and answer.extractive is not None:
        extracted = _answer_body(answer.extractive, shown=answer.citations)
        quoted = "\n".join("> " + line if line.strip() else ">" for line in extracted.split("\n"))
        parts.append(f"**{EXTRACTED_LABEL}:**\n\n{quoted}")
    return "\n\n".join(parts)


def writing_markdown(text: str) -> str:
    """A written answer while it streams in: marked as not checked yet (the check needs the whole text)."""
    shown = strip_thinking(text)
    return f"*{WRITING_NOTE}*\n\n" + (markdown_escape(shown) if shown else "…")


# ---- JSON for the API -------------------------------------------------------------------------
def citation_json(number: int, hit: Hit) -> dict[str, Any]:
    """A citation as plain JSON, including its highlighted HTML snippet."""
    return {
        "n": number,
        "doc_id": hit.doc_id,
        "title": hit.title,
        "issuer": hit.meta.get("issuer", ""),
        "date": document_date(hit.meta),
        "section": hit.section,
        "start": hit.start,
        "end": hit.end,
        "score": hit.score,
        "text": hit.text,
        "highlights": [list(s) for s in hit.highlights],
        "html": highlight_html(hit.text, hit.highlights),
    }


def answer_json(answer: Answer, mode: str) -> dict[str, Any]:
    """The /ask response: rag's answer JSON plus the marked answer, mode, and each citation's issuer, date and HTML;
    a written answer keeps its own [n] markers, and its extracted answer (`extractive`) gets the same fields."""
    from rag.present import answer_to_json

    data = answer_to_json(answer)
    data["mode"] = mode
    if answer.generated:
        data["answer_with_citations"] = answer.text
        if answer.extractive is not None:
            data["extractive"] = answer_json(answer.extractive, mode)
    else:
        data["answer_with_citations"] = with_markers(answer) if answer.found else None
    for number, (item, hit) in enumerate(zip(data["citations"], answer.citations), 1):
        item.update({key: value for key, value in citation_json(number, hit).items() if key not in item})
    return data


def document_json(doc: Document, start: int | None = None, end: int | None = None) -> dict[str, Any]:
    """The /document response: text as stored plus the escaped HTML view."""
    return {
        "doc_id": doc.doc_id,
        "title": doc.title,
        "meta": doc.meta,
        "text": doc.text,
        "html": document_html(doc, start, end),
    }


def document_summary(doc: Document, chunks: int = 0) -> dict[str, Any]:
    """One row of the /documents list."""
    return {"doc_id": doc.doc_id, "title": doc.title, "issuer": doc.meta.get("issuer", ""),
            "date": document_date(doc.meta), "chunks": chunks}


# ---- the documents panel ----------------------------------------------------------------------
MAX_LISTED = 10  # doc ids listed in the panel's report; a spreadsheet may add thousands of rows


def listed(ids: list[str]) -> str:
    """Escaped ids, the first MAX_LISTED of them and a count of the rest."""
    text = ", ".join(f"<code>{escape(i)}</code>" for i in ids[:MAX_LISTED])
    return text + (f" … (+{len(ids) - MAX_LISTED})" if len(ids) > MAX_LISTED else "")


def change_html(change: Any) -> str:
    """The panel's report of an upload or a delete (ui.uploads.Change): ids added or removed, each skipped file
    with its reason, and the size of the index now served; names and reasons come from users, so all escaped."""
    parts = []
    if change.added:
        parts.append(f'<div class="up-added">Added 已添加 {len(change.added)}: {listed(change.added)}</div>')
    if change.removed:
        parts.append(f'<div class="up-removed">Removed 已删除 {len(change.removed)}: {listed(change.removed)}</div>')
    if change.skipped:
        rows = "".join(f"<li><b>{escape(name)}</b>: {escape(reason)}</li>" for name, reason in change.skipped)
        parts.append(f'<div class="up-skipped">Skipped 未加入 {len(change.skipped)}:<ul>{rows}</ul></div>')
    if not parts:
        parts.append('<div class="up-none">Nothing changed 无变化</div>')
    docs = len(change.index.documents())
    parts.append(f'<div class="up-total">Now serving {docs} document{"" if docs == 1 else "s"} 当前文档数 {docs}</div>')
    return f'<div class="upload-report">{"".join(parts)}</div>'


def notice_html(message: str) -> str:
    """A refusal in the panel (another build running, no corpus folder, not an upload), escaped."""
    return f'<div class="upload-report up-notice">{escape(message)}</div>'
