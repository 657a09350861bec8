"""Extractive answers: the clause that holds the asked figure or entity, highlighted and cited, or "not found".

No language model writes anything here: every answer is a span of a retrieved paragraph (or, for lists,
reasons and methods, several such spans joined by line breaks), and a faithfulness check rejects any
answer whose numbers, dates or names are not inside a highlighted span of a citation.
"""
from __future__ import annotations

import html
import math
import re
import time
from dataclasses import dataclass, field, replace

import numpy as np

from rag.question import (
    OPPOSED,
    PLACE_SCOPES,
    QUALIFIER_GROUPS,
    UNIT_ACCEPT,
    YEAR_RE,
    QuestionInfo,
    analyze,
)
from rag.text import normalize
from rag.types import Answer, Hit, Span

CANDIDATE_HITS = 10  # paragraphs the index retrieves for the answer engine
SCAN_HITS = 8  # of those, how many are split into clauses (the rest only count as context)
MAX_EMBEDDED = 32  # sentences embedded per question (measured ≈ 0.3 s for 24 on 2 cores)
ABSTAIN_CITATIONS = 3

# ---- thresholds (calibrated on tests/answer_cases.jsonl; see calibrate_thresholds / the note below) -----
# Calibration (scripts run on the reference corpus index, 70 answerable + 12 unanswerable questions):
# filled in from the measurement, see CALIBRATION below.
MIN_COVERAGE = 0.55  # share of the subject terms the best clause (with its sentence) must contain
MIN_SCORE = 0.9  # total score of the best clause
MIN_COVERAGE_EN = 0.45
MIN_SCORE_EN = 0.8

# ---- weights of the clause score -----------------------------------------------------------------------
W_COVERAGE = 1.0
W_SEMANTIC = 2.5  # times (cosine − SEM_CENTER)
SEM_CENTER = 0.82
W_KIND = 0.4
W_RANK = 0.15
CREDIT_CLAUSE, CREDIT_PAREN, CREDIT_SENTENCE, CREDIT_CONTEXT = 1.0, 0.5, 0.75, 0.4
GENERIC_TERMS = frozenset(  # words that occur everywhere in these documents: they count for little
    "企业 领域 产业 工作 科技 发展 建设 重点 支持 情况 提升 加强 推动 创新 市级 全市 我市 石家庄 开展 方面 相关 "
    "单位 部门 政策 文件 答复 提案 问题 年度 今年 目前".split())
GENERIC_WEIGHT = 0.35

# ---- patterns of answer entities ----------------------------------------------------------------------
_NUM = r"\d+(?:,\d{3})*(?:\.\d+)?"
UNITS = ("个百分点", "百分点", "亿元", "万元", "元", "亿", "万", "%", "家", "户", "个", "项", "人", "名", "位", "所",
         "场", "次", "批次", "批", "倍", "件", "篇", "台", "套")
QUANTITY_RE = re.compile(
    rf"(?<![A-Za-z0-9.\-])(?:{_NUM}\s*(?:余|多)?\s*(?:{'|'.join(map(re.escape, UNITS))})"
    rf"(?:\s*{_NUM}\s*(?:余|多)?\s*(?:{'|'.join(map(re.escape, UNITS))}))*)")
DATE_RE = re.compile(r"(?<!\d)(?:\d{4}年\d{1,2}月\d{1,2}日|\d{4}-\d{1,2}-\d{1,2}|\d{4}年\d{1,2}月|\d{4}年度?)")
PHONE_RE = re.compile(r"(?<!\d)(?:\d{3,4}-\d{7,8}|1[3-9]\d{9})(?!\d)")
DOC_TITLE_RE = re.compile(r"《[^《》\n]{2,80}》")
DOC_NUMBER_RE = re.compile(r"[\u4e00-\u9fff]{1,12}〔\d{4}〕第?\d+号")
PERSON_RES = [
    re.compile(r"(?:签发|签发人|联系人及电话|联系人|提案人|负责人|审核|审核人|拟稿|拟稿人|主送|经办人)\s*[:：]\s*"
               r"(?P<name>[\u4e00-\u9fff]{2,4}?)(?=[,，;；\s(（]|\d|$)"),
    re.compile(r"(?P<name>[\u4e00-\u9fff]{2,3})(?:委员|代表|院士|同志|局长|主任|书记|市长|厅长)(?!会)\s*[:：]"),
]
ORG_SUFFIXES = ("股份有限公司", "有限责任公司", "有限公司", "集团", "科学技术局", "委员会", "办公室", "研究院", "研究所",
                "大学", "学院", "实验室", "政府", "公司", "局", "厅", "委", "中心", "协会", "医院", "银行", "部")
ORG_RE = re.compile(r"[\u4e00-\u9fffA-Za-z0-9]{2,30}?(?:" + "|".join(ORG_SUFFIXES) + r")(?![\u4e00-\u9fff]{0,1}(?:作|长|门|分|署))")
ORG_LEADING_NOISE = re.compile(r"^(?:今年|去年|目前|已|并|对|由|为|被|经|和|与|及|向|给|在|将|把|认定|支持|依托|推动|"
                               r"组织|积极|主动|联合|全市|我市|现|请|抄送|主送|其中|包括|等)+")
ENUM_SEPARATOR = "、"
ENUM_START_CUES = re.compile(r"(?:布局|包括|包含|涵盖|涉及|面向和支持|面向|支持|聚焦|围绕|推动|发展|培育|如|有|是|为|在|对|"
                             r"和|[:：(（])")
LEAD_RE = re.compile(r"^\s*(?:[一二三四五六七八九十]+是|首先|其次|再次|最后|第[一二三四五六七八九十]+[,，、])")
LEAD_ORDINAL_RE = re.compile(r"^\s*([一二三四五六七八九十]+)是")
REASON_CUES = re.compile(r"得益于|由于|因为|原因|归功于|源于|主要是|缘于|because|due to|thanks to")
ACTION_CUES = re.compile(r"开展|实施|设立|加强|推动|推进|建设|组织|举办|发布|制定|出台|印发|启动|构建|培育|强化|加大|"
                         r"完善|优化|引进|选派|认定|布局|谋划|争取|打造|建立|落实|召开|给予|支持|提供")
SENTENCE_END = "。！？!?；;\n"
_CJK_CHAR = re.compile(r"[\u4e00-\u9fff]")

NOT_FOUND_TEXT = {
    "zh": "未在检索到的文档中找到该问题的答案。",
    "en": "The documents do not contain an answer to this question.",
}


@dataclass
class Piece:
    """A clause of a retrieved paragraph, with its sentence; offsets are relative to the hit's text."""

    hit: int
    start: int
    end: int
    sent_start: int
    sent_end: int


@dataclass
class Entity:
    """A candidate answer inside a clause (offsets relative to the hit's text)."""

    kind: str  # quantity date person organisation document phone list sentence
    start: int
    end: int
    unit: str = ""


@dataclass
class Candidate:
    """A scored clause and the answer spans it would give."""

    piece: Piece
    score: float
    coverage: float
    fits: bool
    conflict: bool
    entities: list[Entity] = field(default_factory=list)
    semantic: float = 0.0
    notes: dict = field(default_factory=dict)


# ---- splitting -----------------------------------------------------------------------------------------
def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans (end exclusive, delimiter included, surrounding spaces trimmed)."""
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
    """Clause spans inside a sentence: cut at '，' and at ASCII ',' unless it sits between digits (1,000)."""
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
    return bool(re.search(r"[\w\u4e00-\u9fff]", s))


def pieces_of(hits: list[Hit], limit: int = SCAN_HITS) -> list[Piece]:
    """Every clause of the first `limit` hits, with the sentence it belongs to."""
    out = []
    for h, hit in enumerate(hits[:limit]):
        for s_start, s_end in split_sentences(hit.text):
            for c_start, c_end in split_clauses(hit.text, s_start, s_end):
                out.append(Piece(h, c_start, c_end, s_start, s_end))
    return out


# ---- entities ------------------------------------------------------------------------------------------
def _unit_of(quantity: str) -> str:
    for unit in UNITS:
        if quantity.endswith(unit):
            return unit
    return ""


def find_entities(text: str, start: int, end: int, kind: str) -> list[Entity]:
    """Entities of one kind inside text[start:end] (offsets into text)."""
    seg = text[start:end]
    out: list[Entity] = []
    if kind == "quantity":
        for m in QUANTITY_RE.finditer(seg):
            out.append(Entity("quantity", start + m.start(), start + m.end(), _unit_of(m.group(0))))
    elif kind == "date":
        for m in DATE_RE.finditer(seg):
            out.append(Entity("date", start + m.start(), start + m.end()))
    elif kind == "phone":
        for m in PHONE_RE.finditer(seg):
            out.append(Entity("phone", start + m.start(), start + m.end()))
    elif kind == "document":
        for m in DOC_TITLE_RE.finditer(seg):
            out.append(Entity("document", start + m.start(), start + m.end()))
        for m in DOC_NUMBER_RE.finditer(seg):
            a, b = m.start(), m.end()
            a += len(ORG_LEADING_NOISE.match(m.group(0)).group(0)) if ORG_LEADING_NOISE.match(m.group(0)) else 0
            out.append(Entity("document", start + a, start + b))
    elif kind == "person":
        for pattern in PERSON_RES:
            for m in pattern.finditer(seg):
                out.append(Entity("person", start + m.start("name"), start + m.end("name")))
    elif kind == "organisation":
        for m in ORG_RE.finditer(seg):
            a, b = m.start(), m.end()
            noise = ORG_LEADING_NOISE.match(seg, a, b)
            if noise:
                a = noise.end()
            if b - a >= 3:
                out.append(Entity("organisation", start + a, start + b))
    elif kind == "list":
        out.extend(find_enumerations(text, start, end))
    out.sort(key=lambda e: (e.start, -e.end))
    kept: list[Entity] = []
    for e in out:  # drop entities nested in an earlier one
        if kept and e.start < kept[-1].end:
            continue
        kept.append(e)
    return kept


def find_enumerations(text: str, start: int, end: int) -> list[Entity]:
    """Runs of 、-separated items (at least two) inside a clause, trimmed to the items themselves."""
    seg = text[start:end]
    if seg.count(ENUM_SEPARATOR) < 1:
        return []
    parts = seg.split(ENUM_SEPARATOR)
    first, last = parts[0], parts[-1]
    middle = parts[1:-1]
    typical = max([len(p) for p in middle] + [len(_last_item_cut(last))] + [2])
    # the first item starts after the last cue word within reach, else it is as long as a typical item
    first_start = max(0, len(first) - typical - 2)
    cue_end = None
    for m in ENUM_START_CUES.finditer(first):
        if m.end() < len(first) and len(first) - m.end() <= typical + 4:
            cue_end = m.end()
            break
    if cue_end is not None:
        first_start = cue_end
    last_item = _last_item_cut(last)
    a = start + first_start
    b = start + len(seg) - len(last) + len(last_item)
    a, b = _trim(text, a, b)
    if b - a < 3:
        return []
    return [Entity("list", a, b)]


def _last_item_cut(last: str) -> str:
    """The last item ends before 等 (…等产业) or at a bracket / sentence end."""
    m = re.search(r"等|[)）]", last)
    return last[:m.start()] if m else last


# ---- scoring -----------------------------------------------------------------------------------------
def _term_weight(term: str) -> float:
    base = min(len(term), 4) / 4 if _CJK_CHAR.search(term) else 1.0
    return base * (GENERIC_WEIGHT if term in GENERIC_TERMS else 1.0)


def _strip_parens(s: str) -> str:
    """The clause with parenthesised asides blanked (same length), so a term only in an aside counts less."""
    out, depth = [], 0
    for ch in s:
        if ch in "(（":
            depth += 1
        if depth:
            out.append(" ")
        else:
            out.append(ch)
        if ch in ")）":
            depth = max(0, depth - 1)
    return "".join(out)


def coverage(info: QuestionInfo, clause: str, sentence: str, context: str) -> float:
    """Weighted share of the subject terms found: in the clause (full), its sentence, or the paragraph/title."""
    if not info.terms and not info.unmatched:
        return 0.0
    bare = _strip_parens(clause)
    got = total = 0.0
    for group in info.terms:
        weight = max(_term_weight(t) for t in group)
        total += weight
        if any(t in bare for t in group):
            credit = CREDIT_CLAUSE
        elif any(t in clause for t in group):
            credit = CREDIT_PAREN
        elif any(t in sentence for t in group):
            credit = CREDIT_SENTENCE
        elif any(t in context for t in group):
            credit = CREDIT_CONTEXT
        else:
            credit = 0.0
        got += weight * credit
    total += 0.5 * len(info.unmatched)  # English words the lexicon does not know count as half-missing
    return got / total if total else 0.0


def _years_in(text: str) -> set[str]:
    return {m.group(1) for m in YEAR_RE.finditer(text)}


def constraint_score(info: QuestionInfo, clause: str, sentence: str, paragraph: str) -> tuple[float, bool, dict]:
    """Bonus/penalty from years, qualifiers, fields and place scope; True when the clause contradicts a year."""
    score, conflict, notes = 0.0, False, {}
    if info.years:
        asked = set(info.years)
        s_years, p_years = _years_in(sentence), _years_in(paragraph)
        if asked & s_years:
            score += 0.25
        elif s_years:
            score -= 0.6
            conflict = True
        elif asked & p_years:
            score += 0.1
        elif p_years:
            score -= 0.4
            conflict = True
        else:
            score -= 0.05
        notes["years"] = sorted(s_years)
    bare = _strip_parens(clause)
    asked_groups = set(info.qualifiers)
    for group, cues in QUALIFIER_GROUPS.items():
        present = any(cue in bare for cue in cues["text"])
        if group in asked_groups and present:
            score += 0.3
        elif present and any(g in asked_groups for g in OPPOSED.get(group, ())):
            if not any(any(c in bare for c in QUALIFIER_GROUPS[g]["text"]) for g in asked_groups):
                score -= 0.5
        elif present and group == "sub" and not info.fields and "sub" not in asked_groups:
            score -= 0.15
    fields_in_clause = re.findall(r"([\u4e00-\u9fff]{2,6}?)领域", bare)
    if info.fields:
        if any(f in clause for f in info.fields):
            score += 0.25
        else:
            score -= 0.2
    elif fields_in_clause and not any(any(t in f or f in t for t in g) for f in fields_in_clause for g in info.terms):
        score -= 0.35
    scopes_in_clause = {scope for scope, words in PLACE_SCOPES.items() if scope != "city" and any(w in clause for w in words)}
    if scopes_in_clause:
        if scopes_in_clause & set(info.places):
            score += 0.2
        else:
            score -= 0.4
    return score, conflict, notes


def _unit_ok(info: QuestionInfo, unit: str) -> bool:
    if not info.unit:
        return True
    return unit in UNIT_ACCEPT.get(info.unit, (info.unit,))


def _unit_hint_bonus(info: QuestionInfo, unit: str) -> float:
    if not info.unit_hint:
        return 0.0
    return 0.2 if unit in UNIT_ACCEPT.get(info.unit_hint, (info.unit_hint,)) else -0.1


def _entity_kind(info: QuestionInfo) -> str:
    if info.wants_phone:
        return "phone"
    return {"quantity": "quantity", "date": "date", "person": "person", "organisation": "organisation",
            "document": "document", "list": "list"}.get(info.kind, "")


def _kind_fit(info: QuestionInfo, hit: Hit, piece: Piece) -> tuple[bool, list[Entity], float]:
    """Does the clause hold the kind of answer asked? Returns (fits, answer entities, bonus)."""
    text = hit.text
    kind = _entity_kind(info)
    sentence = text[piece.sent_start:piece.sent_end]
    if kind == "quantity":
        ents = [e for e in find_entities(text, piece.start, piece.end, "quantity") if _unit_ok(info, e.unit)]
        if not ents:
            return False, [], 0.0
        best = max(_unit_hint_bonus(info, e.unit) for e in ents)
        return True, ents, best
    if kind == "list":
        ents = find_entities(text, piece.start, piece.end, "list")
        return bool(ents), ents, 0.0
    if kind:
        ents = find_entities(text, piece.start, piece.end, kind)
        if kind == "document":
            q = normalize(info.question)
            ents = [e for e in ents if normalize(text[e.start:e.end]) not in q]
        if kind == "organisation":
            q = normalize(info.question)
            ents = [e for e in ents if normalize(text[e.start:e.end]) not in q]
        return bool(ents), ents, 0.0
    if info.kind == "reason":
        fits = bool(REASON_CUES.search(sentence) or LEAD_RE.search(sentence))
        return fits, [Entity("sentence", piece.sent_start, piece.sent_end)], 0.25 if LEAD_RE.search(sentence) else 0.0
    if info.kind == "method":
        fits = bool(ACTION_CUES.search(sentence))
        return fits, [Entity("sentence", piece.sent_start, piece.sent_end)], 0.2 if LEAD_RE.search(sentence) else 0.0
    return True, [Entity("clause", piece.start, piece.end)], 0.0


def _context(hit: Hit) -> str:
    return normalize(" ".join([hit.title or "", hit.section or "", hit.text]))


def score_pieces(info: QuestionInfo, hits: list[Hit], pieces: list[Piece]) -> list[Candidate]:
    """Lexical stage: coverage, constraints, kind fit and rank for every clause."""
    out = []
    norm_texts = [normalize(h.text) for h in hits]
    contexts = [_context(h) for h in hits]
    n = max(1, len(hits))
    for piece in pieces:
        hit = hits[piece.hit]
        norm = norm_texts[piece.hit]
        clause = norm[piece.start:piece.end]
        sentence = norm[piece.sent_start:piece.sent_end]
        cov = coverage(info, clause, sentence, contexts[piece.hit])
        if info.kind in ("reason", "method"):
            cov = max(cov, coverage(info, sentence, sentence, contexts[piece.hit]))
        cons, conflict, notes = constraint_score(info, clause, sentence, contexts[piece.hit])
        fits, ents, bonus = _kind_fit(info, hit, piece)
        rank = W_RANK * (1 - piece.hit / n)
        score = W_COVERAGE * cov + cons + (W_KIND + bonus if fits else 0.0) + rank
        out.append(Candidate(piece, score, cov, fits, conflict, ents, notes=notes))
    return out


def add_semantic(info: QuestionInfo, hits: list[Hit], cands: list[Candidate], embedder) -> None:
    """Embed the best few dozen sentences once each and add W_SEMANTIC × (cosine − SEM_CENTER)."""
    if embedder is None or not cands:
        return
    best_by_sentence: dict[tuple[int, int], float] = {}
    for c in cands:
        key = (c.piece.hit, c.piece.sent_start)
        best_by_sentence[key] = max(best_by_sentence.get(key, -9.0), c.score)
    keys = sorted(best_by_sentence, key=lambda k: -best_by_sentence[k])[:MAX_EMBEDDED]
    spans = {}
    for c in cands:
        spans[(c.piece.hit, c.piece.sent_start)] = c.piece.sent_end
    texts = [hits[h].text[s:spans[(h, s)]] for h, s in keys]
    qvec = embedder.embed_queries([info.question])[0]
    pvecs = embedder.embed_passages(texts)
    sims = dict(zip(keys, (pvecs @ qvec).tolist()))
    floor = min(sims.values()) if sims else SEM_CENTER
    for c in cands:
        sim = sims.get((c.piece.hit, c.piece.sent_start), floor)
        c.semantic = float(sim)
        c.score += W_SEMANTIC * (sim - SEM_CENTER)


# ---- composing the answer --------------------------------------------------------------------------
def _pick_entities(info: QuestionInfo, hit: Hit, cand: Candidate) -> list[Entity]:
    """The entity (or entities) of the best clause that answer the question."""
    ents = cand.entities
    if not ents:
        return []
    kind = _entity_kind(info)
    plural = info.kind == "list" or bool(re.search(r"哪些|哪几|哪[两二三四五六七八九十]|分别|which \w+s\b|what \w+s\b",
                                                    normalize(info.question)))
    if kind in ("organisation", "document") and plural:
        return ents
    if kind == "quantity" and len(ents) > 1:
        return [max(ents, key=lambda e: _entity_local_score(info, hit.text, cand.piece, e))]
    if kind in ("organisation", "document", "person", "date", "phone"):
        return [max(ents, key=lambda e: _entity_local_score(info, hit.text, cand.piece, e))]
    return ents[:1]


def _entity_local_score(info: QuestionInfo, text: str, piece: Piece, e: Entity) -> float:
    """Prefer the figure whose own words (the text since the previous figure) carry the asked terms/qualifiers."""
    left = normalize(text[piece.start:e.start])
    prev = list(QUANTITY_RE.finditer(left))
    if prev:
        left = left[prev[-1].end():]
    score = 0.0
    for group in info.terms:
        if any(t in left for t in group):
            score += _term_weight(group[0])
    for g in info.qualifiers:
        if any(c in left for c in QUALIFIER_GROUPS[g]["text"]):
            score += 0.5
    if e.unit:
        score += _unit_hint_bonus(info, e.unit)
    score -= 0.001 * (e.start - piece.start)
    return score


def _lead_siblings(hits: list[Hit], best_hit: int, sent_start: int) -> list[tuple[int, int, int]]:
    """The 一是/二是/三是 lead sentences of the same enumeration as the chosen one, across hits, in order."""
    base = hits[best_hit]
    anchor = base.start + sent_start
    found: dict[str, tuple[int, int, int, int]] = {}  # ordinal → (distance, hit, start, end)
    for h, hit in enumerate(hits):
        if hit.doc_id != base.doc_id:
            continue
        for s, e in split_sentences(hit.text):
            m = LEAD_ORDINAL_RE.match(hit.text[s:e])
            if not m:
                continue
            absolute = hit.start + s
            distance = abs(absolute - anchor)
            if distance > 2500:
                continue
            previous = found.get(m.group(1))
            if previous is None or distance < previous[0]:
                found[m.group(1)] = (distance, h, s, e)
    order = "一二三四五六七八九十"
    chosen = sorted(found.values(), key=lambda v: hits[v[1]].start + v[2])
    # keep one consecutive run of ordinals that contains the anchor
    ordinals = [k for k in sorted(found, key=lambda k: order.find(k) if len(k) == 1 else 99)]
    run = []
    for i, k in enumerate(ordinals):
        if order.find(k) != i:
            break
        run.append(found[k])
    run = run if any(hits[v[1]].start + v[2] == anchor for v in run) else [v for v in chosen if hits[v[1]].start + v[2] == anchor]
    # the same text may sit in two overlapping chunks: keep each absolute span once
    seen, out = set(), []
    for _, h, s, e in sorted(run, key=lambda v: hits[v[1]].start + v[2]):
        key = hits[h].start + s
        if key not in seen:
            seen.add(key)
            out.append((h, s, e))
    return out


def _lead_span(text: str, s: int, e: int) -> tuple[int, int]:
    """A lead sentence up to its first full stop (一是市委市政府的高度重视。)."""
    return s, e


def _introduced_leads(hits: list[Hit], best_hit: int, sent_end: int) -> list[tuple[int, int, int]]:
    """Leads that follow an introducing sentence ending with a colon (…主要得益于:)."""
    base = hits[best_hit]
    after = base.start + sent_end
    firsts = []
    for h, hit in enumerate(hits):
        if hit.doc_id != base.doc_id:
            continue
        for s, e in split_sentences(hit.text):
            m = LEAD_ORDINAL_RE.match(hit.text[s:e])
            if m and m.group(1) == "一" and 0 <= hit.start + s - after <= 40:
                firsts.append((h, s))
    if not firsts:
        return []
    h, s = firsts[0]
    return _lead_siblings(hits, h, s)


@dataclass
class Composed:
    """An answer text plus the highlight spans (per hit index) that support it."""

    text: str
    spans: dict[int, list[Span]]


def compose(info: QuestionInfo, hits: list[Hit], cand: Candidate) -> Composed | None:
    """The answer text (source words only) and its highlights for the chosen clause."""
    piece = cand.piece
    hit = hits[piece.hit]
    text = hit.text
    if info.kind in ("reason", "method"):
        sentence = text[piece.sent_start:piece.sent_end].rstrip()
        leads: list[tuple[int, int, int]] = []
        if sentence.endswith((":", "：")):
            leads = _introduced_leads(hits, piece.hit, piece.sent_end)
        elif LEAD_RE.search(sentence):
            leads = _lead_siblings(hits, piece.hit, piece.sent_start)
        if len(leads) >= 2:
            spans: dict[int, list[Span]] = {}
            parts = []
            for h, s, e in leads:
                s, e = _lead_span(hits[h].text, s, e)
                spans.setdefault(h, []).append((s, e))
                parts.append(hits[h].text[s:e].strip())
            return Composed("\n".join(parts), spans)
        return Composed(text[piece.sent_start:piece.sent_end].strip(), {piece.hit: [(piece.sent_start, piece.sent_end)]})
    ents = _pick_entities(info, hit, cand)
    if not ents:
        return None
    kind = _entity_kind(info)
    if kind == "list" or (kind in ("organisation", "document") and len(ents) > 1):
        a, b = ents[0].start, ents[-1].end
        return Composed(text[a:b], {piece.hit: [(e.start, e.end) for e in ents]})
    if ents[0].kind == "clause":
        return Composed(text[piece.start:piece.end], {piece.hit: [(piece.start, piece.end)]})
    spans = [(e.start, e.end) for e in ents]
    a, b = piece.start, piece.end
    # dates in the answer clause are the figure's time scope: highlight them too
    for m in DATE_RE.finditer(text, a, b):
        if not any(s <= m.start() < e for s, e in spans):
            spans.append((m.start(), m.end()))
    a, b = _trim_unsupported(text, a, b, spans)
    return Composed(text[a:b], {piece.hit: sorted(spans)})


def _trim_unsupported(text: str, a: int, b: int, spans: list[Span]) -> tuple[int, int]:
    """Shrink the clause so it holds no figure or name that is not highlighted (keeps the answer inside)."""
    lo = min(s for s, _ in spans)
    hi = max(e for _, e in spans)
    for s, e in _claim_spans(text, a, b):
        if any(hs <= s and e <= he for hs, he in spans):
            continue
        if e <= lo:
            a = max(a, e)
        elif s >= hi:
            b = min(b, s)
    a, b = _trim(text, a, b)
    while a < lo and text[a] in "、，,:：;；)）":
        a += 1
    while b > hi and text[b - 1] in "、，,:：;；(（":
        b -= 1
    return a, b


# ---- faithfulness --------------------------------------------------------------------------------------
CLAIM_NUMBER_RE = re.compile(r"(?<![A-Za-z\d])\d+(?:[.,]\d+)*(?![A-Za-z\d])")


def _claim_spans(text: str, a: int = 0, b: int | None = None) -> list[Span]:
    """Numbers, dates, person and organisation names and document titles/numbers in text[a:b]."""
    b = len(text) if b is None else b
    spans: list[Span] = []
    for m in CLAIM_NUMBER_RE.finditer(text, a, b):
        spans.append((m.start(), m.end()))
    for kind in ("person", "organisation", "document"):
        for e in find_entities(text, a, b, kind):
            spans.append((e.start, e.end))
    return spans


def extract_claims(text: str) -> list[str]:
    """The checkable claims of an answer text: every number, date, name and document reference."""
    return [text[s:e] for s, e in _claim_spans(text)]


def unsupported_claims(text: str, citations: list[Hit]) -> list[str]:
    """Claims of `text` that no highlighted span of any citation contains verbatim (empty list = faithful)."""
    highlighted = [hit.text[s:e] for hit in citations for s, e in hit.highlights]
    missing = []
    for claim in extract_claims(text):
        if claim.isdigit() or CLAIM_NUMBER_RE.fullmatch(claim):
            pattern = re.compile(r"(?<![\d.])" + re.escape(claim) + r"(?![\d]|\.\d)")
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


# ---- main entry ------------------------------------------------------------------------------------------
def _thresholds(info: QuestionInfo) -> tuple[float, float]:
    if info.language == "en":
        return MIN_COVERAGE_EN, MIN_SCORE_EN
    return MIN_COVERAGE, MIN_SCORE


def _eligible(info: QuestionInfo, cand: Candidate) -> bool:
    min_cov, min_score = _thresholds(info)
    return cand.fits and not cand.conflict and cand.coverage >= min_cov and cand.score >= min_score


def rank_candidates(question: str | QuestionInfo, hits: list[Hit], embedder=None) -> list[Candidate]:
    """All clauses of the top hits, best first (exposed for calibration and debugging)."""
    info = question if isinstance(question, QuestionInfo) else analyze(question)
    pieces = pieces_of(hits)
    cands = score_pieces(info, hits, pieces)
    add_semantic(info, hits, cands, embedder)
    cands.sort(key=lambda c: -c.score)
    return cands


def _not_found(info: QuestionInfo, hits: list[Hit], started: float) -> Answer:
    citations = [replace(h, highlights=[], meta=dict(h.meta)) for h in hits[:ABSTAIN_CITATIONS]]
    return Answer(question=info.question, text=NOT_FOUND_TEXT[info.language], found=False, citations=citations,
                  kind=info.kind, elapsed_ms=round((time.perf_counter() - started) * 1000, 1))


def answer_question(question: str, hits: list[Hit], embedder=None) -> Answer:
    """The best clause of the hits that matches the subject and holds the kind of answer asked, or not-found."""
    started = time.perf_counter()
    info = analyze(question)
    if not hits:
        return _not_found(info, hits, started)
    cands = rank_candidates(info, hits, embedder)
    for cand in cands[:5]:
        if not _eligible(info, cand):
            continue
        composed = compose(info, hits, cand)
        if composed is None or not composed.text.strip():
            continue
        answer = _build_answer(info, hits, cand, composed, started)
        if is_faithful(answer):
            return answer
    return _not_found(info, hits, started)


def _build_answer(info: QuestionInfo, hits: list[Hit], cand: Candidate, composed: Composed, started: float) -> Answer:
    order = [cand.piece.hit] + [h for h in composed.spans if h != cand.piece.hit]
    order = sorted(set(order), key=lambda h: (h != cand.piece.hit, h))
    citations = []
    for h in order:
        hit = hits[h]
        citations.append(replace(hit, highlights=_merge(composed.spans.get(h, [])), meta=dict(hit.meta)))
    for h, hit in enumerate(hits):  # the other retrieved paragraphs follow, without highlights
        if h not in composed.spans and len(citations) < CANDIDATE_HITS:
            if not any(c.doc_id == hit.doc_id and c.start == hit.start for c in citations):
                citations.append(replace(hit, highlights=[], meta=dict(hit.meta)))
    return Answer(question=info.question, text=composed.text.strip(), found=True, citations=citations, kind=info.kind,
                  elapsed_ms=round((time.perf_counter() - started) * 1000, 1))


def _merge(spans: list[Span]) -> list[Span]:
    out: list[Span] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


# ---- output --------------------------------------------------------------------------------------------
ANSI_MARK = ("\x1b[1;33m", "\x1b[0m")
PLAIN_MARK = ("【", "】")


def mark_spans(text: str, spans: list[Span], marks: tuple[str, str] = PLAIN_MARK) -> str:
    """The text with each span wrapped in the given open/close marks."""
    out, pos = [], 0
    for s, e in _merge([(max(0, s), min(len(text), e)) for s, e in spans]):
        out.append(text[pos:s])
        out.append(marks[0] + text[s:e] + marks[1])
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
    lines = []
    head = ("答：" if _CJK_CHAR.search(answer.question or "") else "Answer: ") if answer.found else ""
    lines.append(head + (answer.text or ""))
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
    """Minimal HTML of the answer and marked citations (untrusted text escaped)."""
    parts = [f"<p>{html.escape(answer.text or '')}</p>"]
    for n, hit in enumerate(answer.citations, 1):
        body = mark_spans(hit.text, hit.highlights, ("\x00", "\x01"))
        body = html.escape(body).replace("\x00", "<mark>").replace("\x01", "</mark>")
        parts.append(f"<p><b>{html.escape(citation_label(n, hit))}</b><br>{body}</p>")
    return "\n".join(parts)
