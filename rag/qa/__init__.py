"""Question answering without a language model: analyse the question → candidate clauses → score (a model fitted
on the dev parts) → extract by type → compose → verify; each stage is a module of this package."""
from rag.qa.candidates import split_clauses, split_sentences
from rag.qa.extract import find_entities
from rag.qa.fields import asked_fields, locate_field
from rag.qa.pipeline import CANDIDATE_HITS, NOT_FOUND_TEXT, answer_question, rank_candidates
from rag.qa.question import QuestionInfo, analyze
from rag.qa.verify import extract_claims, is_faithful, unsupported_claims

__all__ = [
    "CANDIDATE_HITS", "NOT_FOUND_TEXT", "QuestionInfo", "analyze", "answer_question", "asked_fields",
    "extract_claims", "find_entities", "is_faithful", "locate_field", "rank_candidates", "split_clauses",
    "split_sentences", "unsupported_claims",
]
