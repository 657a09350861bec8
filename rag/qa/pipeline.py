"""The answer pipeline: analyse → candidates → score → extract → compose → verify, or not-found.

1. `analyze` (question.py) types the question: answer kind, unit, subject terms, years, qualifiers.
   `ground_terms` (grounding.py) rewrites its terms in the retrieved passages' own words (compounds, English).
2. `pieces_of` (candidates.py) cuts the top passages into sentences and clauses with exact offsets.
3. `features.make_candidates` makes one candidate per typed value of every clause (exact) and per sentence
   (passage), each with general features; `semantic.add_semantic` adds the sentence/question cosine;
   `score.apply_models` ranks each family and gives every candidate its probability of being right, with the
   model fitted on the dev parts (rag/data/answer_model.json).
4. The best exact candidate above its threshold is composed (compose.py) and verified (verify.py); failing that,
   the best passage above its threshold is shown as a quoted sentence (`exact=False`); failing that, not-found.
"""
from __future__ import annotations

import re
import time
from dataclasses import replace

from rag.qa.candidates import pieces_of
from rag.qa.compose import Composed, compose, compose_sentence
from rag.qa.fields import field_candidates
from rag.qa.grounding import ground_terms
from rag.qa.question import QuestionInfo, analyze
from rag.qa.extract import find_entities
from rag.qa.features import Candidate, entity_kind, make_candidates
from rag.qa.score import apply_models, threshold
from rag.qa.semantic import add_semantic
from rag.qa.verify import is_faithful
from rag.patterns import CN_QUANTITY_RE
from rag.text import normalize
from rag.types import Answer, Hit, merge_spans

CANDIDATE_HITS = 10  # paragraphs the index retrieves for the answer engine
TRY_CANDIDATES = 3  # exact candidates above the threshold tried in turn (compose or verification may fail)
ABSTAIN_CITATIONS = 3
# answer types a sentence must hold a value of before it is shown as the answer (lists and open questions need not)
TYPED_KINDS = ("date", "person", "organisation", "document", "phone", "address", "url", "email", "postcode",
               "doc_number", "rank")
ASKS_AMOUNT = re.compile(r"多少|多长|多久|多大|多高|多远|多宽|多深|多重|几|\bhow (many|much|long|big|large|far|wide)\b")
NOT_FOUND_TEXT = {
    "zh": "未在检索到的文档中找到该问题的答案。",
    "en": "The documents do not contain an answer to this question.",
}


def rank_candidates(question: str | QuestionInfo, hits: list[Hit], embedder=None) -> list[Candidate]:
    """Every candidate of the top hits with its features and probability, best first (fields first of all)."""
    info = question if isinstance(question, QuestionInfo) else ground_terms(analyze(question), hits)
    cands = make_candidates(info, hits, pieces_of(hits))
    add_semantic(info, hits, cands, embedder)
    return field_candidates(info, hits) + apply_models(cands)


def answer_question(question: str | QuestionInfo, hits: list[Hit], embedder=None) -> Answer:
    """The best verified answer of the hits, a quoted passage when no exact value qualifies, or not-found."""
    started = time.perf_counter()
    info = ground_terms(question if isinstance(question, QuestionInfo) else analyze(question), hits)
    if not hits:
        return _not_found(info, hits, started)
    ranked = rank_candidates(info, hits, embedder)
    fields = [c for c in ranked if c.family == "field"]
    exact = [c for c in ranked if c.family == "exact"][:TRY_CANDIDATES]
    for cand in fields + [c for c in exact if c.prob >= threshold("exact")]:
        composed = compose(info, hits, cand)
        if composed is None or not composed.text.strip():
            continue
        answer = _build_answer(info, hits, cand, composed, started)
        if is_faithful(answer):
            return answer
    passage = next((c for c in ranked if c.family == "passage"), None)
    if passage is not None and passage.prob >= threshold("passage") and _passage_may_answer(info, hits, passage):
        answer = _build_answer(info, hits, passage, compose_sentence(info, hits, passage), started, exact=False)
        if is_faithful(answer):
            return answer
    return _not_found(info, hits, started)


def _passage_may_answer(info: QuestionInfo, hits: list[Hit], cand: Candidate) -> bool:
    """A sentence can answer a question asking for a value only if it holds a value of that type: a figure for
    how many / how long, a date for when, a name for who / which office, a number for which phone."""
    text = hits[cand.piece.hit].text
    a, b = cand.piece.sent_start, cand.piece.sent_end
    if ASKS_AMOUNT.search(normalize(info.question)):
        return bool(re.search(r"\d", text[a:b]) or CN_QUANTITY_RE.search(text, a, b))
    kind = entity_kind(info)
    if kind in TYPED_KINDS:
        return bool(find_entities(text, a, b, kind))
    return True


def _not_found(info: QuestionInfo, hits: list[Hit], started: float) -> Answer:
    citations = [replace(h, highlights=[], meta=dict(h.meta)) for h in hits[:ABSTAIN_CITATIONS]]
    return Answer(question=info.question, text=NOT_FOUND_TEXT[info.language], found=False, citations=citations,
                  kind=info.kind, elapsed_ms=_ms(started))


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def _build_answer(info: QuestionInfo, hits: list[Hit], cand: Candidate, composed: Composed, started: float,
                  exact: bool = True) -> Answer:
    order = sorted(composed.spans, key=lambda h: (h != cand.piece.hit, h))
    citations = [replace(hits[h], highlights=merge_spans(composed.spans[h]), meta=dict(hits[h].meta)) for h in order]
    for h, hit in enumerate(hits):  # the other retrieved paragraphs follow, without highlights
        if h not in composed.spans:
            citations.append(replace(hit, highlights=[], meta=dict(hit.meta)))
    return Answer(question=info.question, text=composed.text.strip(), found=True, citations=citations,
                  kind=info.kind, elapsed_ms=_ms(started), exact=exact)
