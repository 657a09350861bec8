"""Composing the answer text and its highlights from the chosen clause (source words only)."""
from __future__ import annotations

import re
from dataclasses import dataclass

from rag.qa.candidates import LEAD_ORDINAL_RE, LEAD_RE, Piece, _trim, split_clauses, split_sentences
from rag.qa.extract import Entity, _inside, _title_spans, find_entities
from rag.qa.question import QuestionInfo
from rag.qa.features import Candidate, entity_kind, strip_parens
from rag.qa.verify import _claim_spans, _name_spans
from rag.patterns import DATE_RE, FIGURE
from rag.text import normalize
from rag.types import Hit, Span

SENTENCE_MAX_CHARS = 160  # a longer sentence is cut to the clauses around the best one
# ---- composing the answer ----------------------------------------------------------------------------------------
@dataclass
class Composed:
    """An answer text plus the highlight spans (per hit index) that support it."""

    text: str
    spans: dict[int, list[Span]]


def _pick_entities(info: QuestionInfo, hit: Hit, cand: Candidate) -> list[Entity]:
    """The entity (or entities) of the best clause that answer the question."""
    ents = cand.entities
    kind = entity_kind(info)
    if ents and ents[0].kind == "list" and len(ents) > 1:
        def fit(e: Entity) -> tuple[bool, int]:
            tail = normalize(hit.text[e.end:cand.piece.end])
            return any(t in tail for t in info.list_noun), hit.text.count("、", e.start, e.end)
        return [max(ents, key=fit)]
    if not ents or ents[0].kind in ("field", "list"):
        return ents
    if kind in ("organisation", "document") and info.plural:
        return _extend_plural(info, hit, cand, kind)
    if kind == "document" and info.references:
        norm = normalize(hit.text)
        refs = [(p, p + len(r)) for r in info.references for p in [norm.find(normalize(r))] if p >= 0]
        if refs:  # the title right before a quoted number (or the number right after a quoted title)
            return [min(ents, key=lambda e: min(max(e.start - r_end, r_start - e.end) for r_start, r_end in refs))]
    return ents


def _extend_plural(info: QuestionInfo, hit: Hit, cand: Candidate, kind: str) -> list[Entity]:
    """All entities of the clause, plus those of neighbouring clauses that hold nothing but such an entity."""
    ents = list(cand.entities)
    clauses = split_clauses(hit.text, cand.piece.sent_start, cand.piece.sent_end)
    index = next((i for i, c in enumerate(clauses) if c[0] == cand.piece.start), None)
    if index is None:
        return ents
    for step in (1, -1):
        i = index + step
        while 0 <= i < len(clauses):
            a, b = clauses[i]
            found = find_entities(hit.text, a, b, kind)
            rest = re.sub(r"[\s、，,。;；:：]", "", hit.text[a:b])
            if len(found) == 1 and len(rest) <= (found[0].end - found[0].start) + 2:
                ents.append(found[0])
                i += step
            else:
                break
    return sorted(ents, key=lambda e: e.start)


def _section_parent(section: str) -> str:
    """A section path without a trailing 一是… component (leads are chunked as sub-sections)."""
    parts = [p.strip() for p in (section or "").split(">")]
    if parts and LEAD_RE.match(parts[-1]):
        parts = parts[:-1]
    return " > ".join(parts)


def _leads(hits: list[Hit], doc_id: str, section: str) -> list[tuple[int, int, int]]:
    """The 一是/二是/… lead sentences of one section across hits, once each, in document order, one run."""
    found: dict[int, tuple[int, int, int]] = {}  # absolute start → (hit, start, end)
    for h, hit in enumerate(hits):
        if hit.doc_id != doc_id or _section_parent(hit.section) != section:
            continue
        for s, e in split_sentences(hit.text):
            if LEAD_ORDINAL_RE.match(hit.text[s:e]) and hit.start + s not in found:
                found[hit.start + s] = (h, s, e)
    ordered = [found[k] for k in sorted(found)]
    order = "一二三四五六七八九十"
    run: list[tuple[int, int, int]] = []
    for h, s, e in ordered:  # keep 一是, 二是, … consecutively from the first 一是
        ordinal = LEAD_ORDINAL_RE.match(hits[h].text[s:e]).group(1)
        if order.find(ordinal) == len(run):
            run.append((h, s, e))
        elif ordinal == "一" and run:
            break
    return run


def _compose_sentences(info: QuestionInfo, hits: list[Hit], cand: Candidate) -> Composed:
    """Reason/method answers: the enumerated leads (一是…二是…) that the best sentence introduces or belongs to."""
    piece = cand.piece
    hit = hits[piece.hit]
    sentence = hit.text[piece.sent_start:piece.sent_end].strip()
    leads: list[tuple[int, int, int]] = []
    if sentence.endswith((":", "：")):  # an introducer: its leads follow in the same section or its subsections
        leads = _leads(hits, hit.doc_id, _section_parent(hit.section))
        if not leads:
            leads = _leads_after(hits, piece)
    elif LEAD_RE.search(sentence) or (info.kind == "method" and not _inside_lead(hit, piece.sent_start)):
        leads = _leads(hits, hit.doc_id, _section_parent(hit.section))
    if len(leads) >= 2:
        spans: dict[int, list[Span]] = {}
        for h, s, e in leads:
            spans.setdefault(h, []).append((s, e))
        return Composed("\n".join(hits[h].text[s:e].strip() for h, s, e in leads), spans)
    return Composed(sentence, {piece.hit: [(piece.sent_start, piece.sent_end)]})


def _inside_lead(hit: Hit, position: int) -> bool:
    """Does the sentence at `position` belong to an 一是/二是 item (rather than to the section's own text)?"""
    parts = [p.strip() for p in (hit.section or "").split(">")]
    if parts and LEAD_RE.match(parts[-1]):
        return True
    return any(LEAD_RE.match(hit.text[s:e]) for s, e in split_sentences(hit.text) if s < position)


def _leads_after(hits: list[Hit], piece: Piece) -> list[tuple[int, int, int]]:
    """Leads whose 一是 starts right after an introducing sentence (…主要得益于:)."""
    base = hits[piece.hit]
    after = base.start + piece.sent_end
    for hit in hits:
        if hit.doc_id != base.doc_id:
            continue
        for s, e in split_sentences(hit.text):
            m = LEAD_ORDINAL_RE.match(hit.text[s:e])
            if m and m.group(1) == "一" and 0 <= hit.start + s - after <= 40:
                return _leads(hits, hit.doc_id, _section_parent(hit.section))
    return []


def _compose_yesno(hits: list[Hit], info: QuestionInfo, cand: Candidate) -> Composed:
    """Yes/no answers: the clause plus the neighbouring clauses of its sentence that carry further question terms."""
    piece = cand.piece
    text = hits[piece.hit].text
    clauses = split_clauses(text, piece.sent_start, piece.sent_end)
    norm = normalize(text)

    def terms_in(a: int, b: int) -> set[int]:
        seg = strip_parens(norm[a:b])
        return {i for i, g in enumerate(info.terms) if any(t in seg for t in g)}

    index = next((i for i, c in enumerate(clauses) if c[0] == piece.start), 0)
    first = last = index
    have = terms_in(*clauses[index])
    for step in (-1, 1):
        i = index + step
        while 0 <= i < len(clauses) and terms_in(*clauses[i]) - have:
            have |= terms_in(*clauses[i])
            first, last = min(first, i), max(last, i)
            i += step
    a, b = clauses[first][0], clauses[last][1]
    return Composed(text[a:b], {piece.hit: [(a, b)]})


def compose(info: QuestionInfo, hits: list[Hit], cand: Candidate) -> Composed | None:
    """The answer text (source words only) and its highlights for the chosen clause."""
    from_field = bool(cand.entities) and cand.entities[0].kind == "field"
    if info.kind in ("reason", "method") and not from_field:
        return _compose_sentences(info, hits, cand)
    if info.kind == "yesno" and not from_field:
        return _compose_yesno(hits, info, cand)
    piece = cand.piece
    text = hits[piece.hit].text
    ents = _pick_entities(info, hits[piece.hit], cand)
    if not ents:
        return None
    if ents[0].kind == "clause":
        return Composed(text[piece.start:piece.end], {piece.hit: [(piece.start, piece.end)]})
    if ents[0].kind == "list" and len(ents) == 1:
        ents = ents + _breakdown_continuation(text, piece, ents[0])
    if len(ents) > 1 or ents[0].kind == "list":
        return Composed(text[ents[0].start:ents[-1].end], {piece.hit: [(e.start, e.end) for e in ents]})
    spans = [(e.start, e.end) for e in ents]
    a, b = piece.start, piece.end
    if ents[0].kind != "date":  # dates in the clause are the figure's time scope: part of the answer
        titles = _title_spans(text, a, b)
        spans += [(m.start(), m.end()) for m in DATE_RE.finditer(text, a, b)
                  if not any(s <= m.start() < e for s, e in spans) and not _inside(titles, m.start(), m.end())]
    # names of another kind beside the answer (the company a count refers to) are highlighted as its context;
    # rival names of the answer's own kind are cut away like other figures
    rivals = set(_name_spans(text, a, b, only=ents[0].kind)) if ents[0].kind in ("person", "document", "organisation") else set()
    spans += [s for s in _name_spans(text, a, b)
              if s not in rivals and not any(x < s[1] and s[0] < y for x, y in spans)]
    a, b = _trim_unsupported(text, a, b, spans)
    return Composed(text[a:b], {piece.hit: sorted(spans)})


_BREAKDOWN_ITEM = re.compile(rf"[^、，,。；;:：\s]{{1,24}}?{FIGURE}")


def _breakdown_continuation(text: str, piece: Piece, listed: Entity) -> list[Entity]:
    """Clauses after a breakdown list (其中A 2家、B 6家,C 1家,D 17家) that hold only more such items."""
    if not _BREAKDOWN_ITEM.search(text, listed.start, listed.end):
        return []
    more = []
    for a, b in split_clauses(text, piece.sent_start, piece.sent_end):
        if a < piece.end:
            continue
        items = text[a:b].split("、")
        if not all(_BREAKDOWN_ITEM.fullmatch(item.strip()) for item in items):
            break
        more.append(Entity("list", a, b))
    return more


_SEPARATORS = "、，,:：;；及和与"


def _trim_unsupported(text: str, a: int, b: int, spans: list[Span], kind: str = "") -> tuple[int, int]:
    """Shrink the clause so it holds no figure (or rival name) that is not highlighted; cut at separators."""
    lo = min(s for s, _ in spans)
    hi = max(e for _, e in spans)
    for s, e in _claim_spans(text, a, b, whole_figures=True):
        if any(hs <= s and e <= he for hs, he in spans):
            continue
        if e <= lo:
            cut = e
            while cut < lo and text[cut] not in _SEPARATORS and not text[cut].isdigit():
                cut += 1  # to the next separator (or up to the answer)
            a = max(a, cut if cut < lo else e)
        elif s >= hi:
            cut = s
            while cut > hi and text[cut - 1] not in _SEPARATORS:
                cut -= 1  # back to the previous separator (or down to the answer)
            b = min(b, cut if cut > hi else s)
    a, b = _trim(text, a, b)
    while a < lo and text[a] in _SEPARATORS + ")）余多%":
        a += 1
    while b > hi and text[b - 1] in _SEPARATORS + "(（等":
        b -= 1
    if b > hi and text[b - 1] in ")）" and text.count("(", a, b) + text.count("（", a, b) < \
            text.count(")", a, b) + text.count("）", a, b):
        b -= 1
    while a < lo and hi < b and text[a] in "(（" and text[b - 1] in ")）":
        a, b = a + 1, b - 1
    return a, b


def compose_sentence(info: QuestionInfo, hits: list[Hit], cand: Candidate) -> Composed:
    """The clause's sentence (its 一是… items for reasons and methods), cut to the clauses around it when long."""
    if info.kind in ("reason", "method"):
        return _compose_sentences(info, hits, cand)
    piece = cand.piece
    text = hits[piece.hit].text
    clauses = split_clauses(text, piece.sent_start, piece.sent_end)
    index = next((i for i, c in enumerate(clauses) if c[0] <= piece.start < c[1]), None)
    if index is None or piece.sent_end - piece.sent_start <= SENTENCE_MAX_CHARS:
        a, b = piece.sent_start, piece.sent_end
    else:
        first = last = index
        while True:  # grow by whole clauses, the following one first, while the window stays short
            grown = False
            for step in (1, -1):
                i = (last if step > 0 else first) + step
                if 0 <= i < len(clauses) and clauses[max(last, i)][1] - clauses[min(first, i)][0] <= SENTENCE_MAX_CHARS:
                    first, last = min(first, i), max(last, i)
                    grown = True
            if not grown:
                break
        a, b = clauses[first][0], clauses[last][1]
    a, b = _trim(text, a, b)
    return Composed(text[a:b], {piece.hit: [(a, b)]})
