"""Candidate features: signals that transfer across documents (term coverage with synonyms, the head word's
place, the answer type and unit, asked years and qualifiers, the retrieval rank).

Every candidate is one possible answer: a typed value inside a clause (`exact`) or a whole sentence (`passage`);
rag/qa/semantic.py adds the embedding similarity of its sentence, rag/qa/score.py turns the features into a
ranking and a confidence with the model fitted on the dev parts.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from rag.qa.candidates import LEAD_RE, Piece
from rag.qa.extract import ACTION_CUES, REASON_CUES, Entity, find_entities
from rag.qa.question import (
    GENERIC_TERMS,
    HEAD_SKIP,
    MEASURE_NOUNS,
    NAMED_SCOPE_RE,
    OPPOSED,
    PLACE_SCOPES,
    QUALIFIER_GROUPS,
    TOTAL_ADVERB_RE,
    ZH_STOPWORDS,
    ZH_VERBS,
    QuestionInfo,
    segment,
)
from rag.patterns import QUANTITY_RE, YEAR_RE, unit_class, units_compatible
from rag.text import normalize
from rag.types import Hit

PASSAGE_HITS = 5  # sentences of the first five passages may be answers by themselves
CREDIT_CLAUSE, CREDIT_SENTENCE, CREDIT_PAREN, CREDIT_CONTEXT = 1.0, 0.75, 0.5, 0.4
PARTIAL_CREDIT = 0.8  # a long term found only through all of its sub-words (联系电话 → 联系人及电话)
COMPOUND_PARTIAL_CREDIT = 0.5  # a compound the paragraphs write whole, found here only in scattered pieces
GENERIC_WEIGHT = 0.35  # words of rag/data/vocabulary_zh.json "generic_words" count for this much
UNMATCHED_WEIGHT = 0.3  # an English word the lexicon cannot translate counts as this much missing weight
_CJK_CHAR = re.compile(r"[\u4e00-\u9fff]")

FEATURES = (
    "coverage", "coverage_clause", "head_clause", "head_sentence", "semantic", "rank", "hit_score", "same_doc",
    "kind_fit", "unit_match", "unit_hint", "year_match", "year_conflict", "qualifier_match", "qualifier_missing",
    "scope_match", "scope_mismatch", "field_match", "field_mismatch", "label", "label_head", "label_extra", "in_question",
    "ambiguity", "english", "unmatched", "lead", "length",
)
FAMILIES = ("exact", "passage")


@dataclass
class Candidate:
    """One possible answer: a value inside a clause (exact) or a sentence (passage), with its features."""

    piece: Piece
    family: str  # exact | passage | field
    entities: list[Entity] = field(default_factory=list)
    features: dict[str, float] = field(default_factory=dict)
    conflict: bool = False  # contradicts an asked year in its sentence, or carries the opposite qualifier
    prob: float = 0.0

    @property
    def semantic(self) -> float:
        return self.features.get("semantic", 0.0)



# ---- term matching -----------------------------------------------------------------------------------------
def term_weight(term: str) -> float:
    """Longer Chinese terms say more; the genre's everyday words (企业, 工作…) say little."""
    base = min(len(term), 4) / 4 if _CJK_CHAR.search(term) else 1.0
    return base * (GENERIC_WEIGHT if term in GENERIC_TERMS else 1.0)


def strip_parens(s: str) -> str:
    """The text with bracketed asides blanked (same length), so a term only in an aside counts less."""
    out, depth = [], 0
    for ch in s:
        if ch in "(（":
            depth += 1
        out.append(" " if depth else ch)
        if ch in ")）":
            depth = max(0, depth - 1)
    return "".join(out)


@dataclass
class Views:
    """The normalised texts a clause is matched against, from narrowest to widest."""

    clause: str
    clause_bare: str
    sentence: str
    sentence_bare: str
    context: str
    before: str = ""  # the sentence up to the clause (a breakdown's field is named there)


def _credit(alternatives: tuple[str, ...], v: Views, quoted: bool = False) -> float:
    if any(t in (v.clause if quoted else v.clause_bare) for t in alternatives):
        return CREDIT_CLAUSE
    if any(t in v.sentence_bare for t in alternatives):
        return CREDIT_SENTENCE
    if any(t in v.clause for t in alternatives) or any(t in v.sentence for t in alternatives):
        return CREDIT_PAREN
    if any(t in v.context for t in alternatives):
        return CREDIT_CONTEXT
    return 0.0


def term_credits(info: QuestionInfo, v: Views) -> list[float]:
    """Per subject term: how close to the clause it was found (1 clause … 0.4 paragraph/title, 0 absent)."""
    credits = []
    for i, group in enumerate(info.terms):
        credit = _credit(group, v, quoted=any(group[0] in ref for ref in info.references))
        if credit == CREDIT_SENTENCE and group[0] in ZH_VERBS:
            credit = CREDIT_CLAUSE  # a predicate applies to every figure of its sentence
        parts = info.parts[i] if i < len(info.parts) else ()
        if credit == 0.0 and parts:
            factor = COMPOUND_PARTIAL_CREDIT if group[0] in info.compounds else PARTIAL_CREDIT
            credit = factor * min(_credit((p,), v) for p in parts)  # every piece must be there
        credits.append(credit)
    return credits


def coverage(info: QuestionInfo, credits: list[float], clause_only: bool = False) -> float:
    """Weighted share of the subject terms found; untranslated English words count as missing weight."""
    weights = [max(term_weight(t) for t in group) for group in info.terms]
    total = sum(weights) + UNMATCHED_WEIGHT * len(info.unmatched)
    if total == 0:
        return 0.0
    if clause_only:
        credits = [1.0 if c >= CREDIT_CLAUSE else 0.0 for c in credits]
    return sum(w * c for w, c in zip(weights, credits)) / total


def years_in(text: str) -> set[str]:
    return {m.group(1) for m in YEAR_RE.finditer(re.sub(r"《[^《》]*》", " ", text))}


def clause_qualifiers(clause_bare: str) -> set[str]:
    """Qualifier groups that label the figures of a clause (新增 → new, 总数/累计/达到 → total, 其中 → sub)."""
    return {g for g, cues in QUALIFIER_GROUPS.items() if any(c in clause_bare for c in cues["text"])}


CARRIED = ("new", "total")  # a breakdown (…,其中A 2家,B 6家) keeps the new/total label of the clause before it


def _scopes(text: str) -> set[str]:
    """Scope levels a text names: national/provincial/city/district words, or any named 省/市/区 (北京市)."""
    found = {s for s, words in PLACE_SCOPES.items() if any(w in text for w in words)}
    return found


def _named_places(text: str) -> set[str]:
    return {m.group(0) for m in NAMED_SCOPE_RE.finditer(text)}


def constraint_features(info: QuestionInfo, v: Views, own: set[str], present: set[str]) -> tuple[dict[str, float], bool]:
    """Years, qualifiers, place scope and fields; and whether the clause contradicts the question outright."""
    f: dict[str, float] = {}
    conflict = False
    if info.years:
        asked = set(info.years)
        s_years, p_years = years_in(v.sentence), years_in(v.context)
        if asked & s_years:
            f["year_match"] = 1.0
        elif s_years:
            f["year_conflict"], conflict = 1.0, True
        elif asked & p_years:
            f["year_match"] = 0.4
        elif p_years:
            f["year_conflict"] = 0.6
    asked_groups = set(info.qualifiers)
    f["qualifier_match"] = float(len(asked_groups & own))
    for group in present - asked_groups:
        if any(g in asked_groups and g not in present for g in OPPOSED.get(group, ())):
            conflict = conflict or info.kind == "quantity"
            f["qualifier_missing"] = 1.0
    if asked_groups & set(CARRIED) and not present & set(CARRIED):
        f["qualifier_missing"] = f.get("qualifier_missing", 0.0) + 0.5
        if info.strong_total and info.kind == "quantity" and not TOTAL_ADVERB_RE.search(v.clause_bare):
            conflict = True  # 一共有多少家: a figure not labelled as a total is not the total
    if "change" in asked_groups and "change" not in own and info.kind == "quantity":
        f["qualifier_missing"] = f.get("qualifier_missing", 0.0) + 1.0
    for batch in info.batches:  # 第八批: the figure's sentence must name that batch
        if batch not in v.sentence:
            f["qualifier_missing"] = f.get("qualifier_missing", 0.0) + 0.5
    fields_in_clause = re.findall(r"([\u4e00-\u9fff]{2,6}?)领域", v.clause_bare)
    if info.fields:
        if any(fl in v.clause for fl in info.fields):
            f["field_match"] = 1.0
        elif any(fl in v.before for fl in info.fields) and not fields_in_clause:
            f["field_match"] = 0.5
        else:
            f["field_mismatch"] = 1.0
    elif fields_in_clause and info.kind == "quantity" and not any(
            any(t in fl or fl in t for t in g) for fl in fields_in_clause for g in info.terms):
        f["field_mismatch"] = 1.0  # a figure restricted to a field the question does not name (其中X领域…)
    scopes = _scopes(v.clause) - {"city"}
    asked_scopes = set(info.places) - {"city"}
    if scopes:
        f["scope_match" if scopes & asked_scopes else "scope_mismatch"] = 1.0
    elif asked_scopes and info.kind == "quantity":
        f["scope_mismatch"] = 0.5
    asked_places = _named_places(normalize(info.question))
    if asked_places:
        if any(p in v.context for p in asked_places):
            f["scope_match"] = f.get("scope_match", 0.0) + 0.5
        else:
            f["scope_mismatch"] = f.get("scope_mismatch", 0.0) + 0.5
    return f, conflict


# ---- answer types ------------------------------------------------------------------------------------------
def entity_kind(info: QuestionInfo) -> str:
    """Which entity extractor answers this question ('' for sentence answers)."""
    if info.attribute:
        return info.attribute
    return info.kind if info.kind in ("quantity", "date", "person", "organisation", "document", "list") else ""


def typed_entities(info: QuestionInfo, hit: Hit, piece: Piece) -> list[Entity]:
    """Values of the asked type inside the clause; a figure of a unit that cannot answer is never one of them."""
    text = hit.text
    kind = entity_kind(info)
    if not kind:
        return []
    if kind == "quantity":
        return [e for e in find_entities(text, piece.start, piece.end, "quantity") if _unit_fits(info, e.unit)]
    if kind == "list":
        ents = find_entities(text, piece.start, piece.end, "list")
        if ents and info.list_noun and not any(t in normalize(text[piece.start:piece.end]) for t in info.list_noun):
            return []  # a list of something else (哪些特点 ≠ 高技术、高成长…企业)
        return ents
    ents = find_entities(text, piece.start, piece.end, kind)
    if kind in ("document", "organisation"):
        q = normalize(info.question)
        ents = [e for e in ents if normalize(text[e.start:e.end]) not in q]
    if not ents and kind == "organisation" and info.plural:  # 哪些机构 → 研发机构、众创空间和引才工作站
        ents = find_entities(text, piece.start, piece.end, "list")
    return ents


def _unit_fits(info: QuestionInfo, unit: str) -> bool:
    """A figure answers only in a unit the question accepts: 多少起 is answered by 1234起, never by 56家."""
    if info.unit:
        return units_compatible(info.unit, unit)
    return True


def _unit_hint(info: QuestionInfo, unit: str) -> float:
    if not info.unit_hint:
        return 0.0
    return 1.0 if units_compatible(info.unit_hint, unit) or unit_class(unit) == info.unit_hint else -1.0


def _label(info: QuestionInfo, text: str, piece: Piece, e: Entity) -> tuple[float, float, float]:
    """How much of the question the figure's own words carry (the text since the previous figure in its clause),
    and how many of those words the question does not name."""
    left = normalize(text[piece.start:e.start])
    previous = list(QUANTITY_RE.finditer(left))
    if previous:
        left = left[previous[-1].end():]
    weights = [max(term_weight(t) for t in g) for g in info.terms]
    total = sum(weights) or 1.0
    found = sum(w for w, g in zip(weights, info.terms) if any(t in left for t in g)) / total
    head = 1.0 if info.head >= 0 and any(t in left for t in info.terms[info.head]) else 0.0
    return found, head, min(1.0, len(extra_words(info, left)) / 2)


_CJK_WORD = re.compile(r"[\u4e00-\u9fff]{2,}")
_NEUTRAL_WORDS = GENERIC_TERMS | ZH_VERBS | HEAD_SKIP | ZH_STOPWORDS | frozenset(
    c for g in QUALIFIER_GROUPS.values() for c in g["text"])


_CLAUSE_BREAK = re.compile(r"[,，;；:：]")


def subjectless(clause: str) -> bool:
    """A clause that names nothing before its first figure (累计处置56起): in a topic chain it speaks of the
    subject of the clause before it."""
    first = re.search(r"\d", clause)
    prefix = clause[: first.start()] if first else clause
    return not any(_CJK_WORD.fullmatch(w) and w not in _NEUTRAL_WORDS for w in segment(prefix))


def previous_clause(before: str) -> str:
    """The last clause of the sentence text before a clause."""
    parts = [p for p in _CLAUSE_BREAK.split(before) if p.strip()]
    return parts[-1] if parts else ""


def extra_words(info: QuestionInfo, label: str) -> list[str]:
    """Content words of a figure's label the question does not name: in 其中网络安全企业56家 asked as
    企业总数, 网络安全 restricts the figure to a part the question did not ask about."""
    asked = [t for g in info.terms for t in g]
    q_norm = normalize(info.question)
    out = []
    for word in segment(label):
        if (_CJK_WORD.fullmatch(word) and word not in _NEUTRAL_WORDS and word not in q_norm
                and not any(word in t or t in word for t in asked)):
            out.append(word)
    return out


# ---- the candidates of a question --------------------------------------------------------------------------
def _context(hit: Hit) -> str:
    return normalize(" ".join([hit.title or "", hit.section or "", hit.text]))


def make_candidates(info: QuestionInfo, hits: list[Hit], pieces: list[Piece]) -> list[Candidate]:
    """Exact candidates (one per typed value of every clause) and passage candidates (one per sentence)."""
    out: list[Candidate] = []
    norm_texts = [normalize(h.text) for h in hits]
    contexts = [_context(h) for h in hits]
    top_score = max((h.score for h in hits), default=0.0) or 1.0
    carried: dict[tuple[int, int], set[str]] = {}
    seen_sentences: set[tuple[int, int]] = set()
    q_norm = normalize(info.question)
    sentence_answers = info.kind in ("reason", "method")
    for piece in pieces:
        hit = hits[piece.hit]
        norm = norm_texts[piece.hit]
        clause = norm[piece.start:piece.end]
        sentence = norm[piece.sent_start:piece.sent_end]
        views = Views(clause, strip_parens(clause), sentence, strip_parens(sentence), contexts[piece.hit],
                      norm[piece.sent_start:piece.start])
        credits = term_credits(info, views)
        if subjectless(clause):  # 新增企业12家,累计达到80家: the subject carries over the comma
            previous = previous_clause(views.before)
            carried_views = Views(previous, strip_parens(previous), sentence, views.sentence_bare, views.context)
            credits = [max(c, p) for c, p in zip(credits, term_credits(info, carried_views))]
        own = clause_qualifiers(views.clause_bare)
        key = (piece.hit, piece.sent_start)
        labels = own | (carried.get(key, set()) if not own & set(CARRIED) else set())
        carried[key] = {g for g in labels if g in CARRIED} or carried.get(key, set())
        cons, conflict = constraint_features(info, views, own, labels)
        head_credit = credits[info.head] if info.head >= 0 else (0.0 if info.head == -2 else 1.0)
        base = {
            "coverage": coverage(info, credits), "coverage_clause": coverage(info, credits, clause_only=True),
            "head_clause": 1.0 if head_credit >= CREDIT_CLAUSE else 0.0,
            "head_sentence": 1.0 if head_credit >= CREDIT_SENTENCE else 0.0,
            "rank": 1.0 / (1 + piece.hit), "hit_score": hit.score / top_score,
            "same_doc": 1.0 if hit.doc_id == hits[0].doc_id else 0.0,
            "english": 1.0 if info.language == "en" else 0.0,
            "unmatched": min(1.0, len(info.unmatched) / 3), **cons,
        }
        if info.head >= 0 and info.terms[info.head][0] in MEASURE_NOUNS:
            base["head_sentence"] = 1.0  # 比例, 增速…: a figure of the fitting unit is what they name
        ents = [] if sentence_answers else typed_entities(info, hit, piece)
        for e in ents:
            f = dict(base, kind_fit=1.0)
            if e.kind == "quantity":
                f["unit_match"] = 1.0 if info.unit and units_compatible(info.unit, e.unit) else 0.0
                f["unit_hint"] = _unit_hint(info, e.unit)
                f["label"], f["label_head"], f["label_extra"] = _label(info, hit.text, piece, e)
            f["in_question"] = 1.0 if normalize(hit.text[e.start:e.end]) in q_norm else 0.0
            f["ambiguity"] = min(1.0, (len(ents) - 1) / 3)
            f["length"] = min(1.0, (e.end - e.start) / 40)
            out.append(Candidate(piece, "exact", [e], f, conflict))
        if piece.hit < PASSAGE_HITS and (piece.hit, piece.sent_start) not in seen_sentences:
            seen_sentences.add((piece.hit, piece.sent_start))
            sentence_views = Views(sentence, views.sentence_bare, sentence, views.sentence_bare, views.context)
            s_credits = term_credits(info, sentence_views)
            f = dict(base, coverage=coverage(info, s_credits),
                     coverage_clause=coverage(info, s_credits, clause_only=True),
                     head_clause=1.0 if (credits[info.head] if info.head >= 0 else 1.0) >= CREDIT_SENTENCE else 0.0,
                     length=min(1.0, (piece.sent_end - piece.sent_start) / 200))
            raw = hit.text[piece.sent_start:piece.sent_end]
            if info.kind == "reason":
                f["kind_fit"] = 1.0 if REASON_CUES.search(raw) else 0.0
            elif info.kind == "method":
                f["kind_fit"] = 1.0 if ACTION_CUES.search(raw) else 0.0
            f["lead"] = 1.0 if LEAD_RE.search(raw) else 0.0
            f["in_question"] = 1.0 if sentence.strip() and sentence.strip() in q_norm else 0.0
            out.append(Candidate(piece, "passage", [Entity("sentence", piece.sent_start, piece.sent_end)], f,
                                 conflict))
    return out
