"""The grounded prompt: the numbered passages with title, issuer and date, the conversation and the question, in the
question's language, within the prompt cap (rag/data/prompts.json holds every word the model is told)."""
from __future__ import annotations

from dataclasses import dataclass

from rag.generation.check import Passage
from rag.patterns import load_data
from rag.search.retrieval import document_date
from rag.text import has_cjk
from rag.types import Hit

PROMPTS = load_data("prompts.json")
MAX_QUESTION_CHARS = 1000  # a pasted page is cut: the passages carry the substance
MAX_TURNS = 3  # the earlier turns shown to the model, newest kept
MAX_TURN_CHARS = 300
MIN_PASSAGE_CHARS = 200  # a passage that would be cut shorter than this is left out instead


@dataclass
class Prompt:
    """The messages sent and the passages as the model saw them (the check reads these, not the full hits)."""

    messages: list[dict]
    passages: list[Passage]
    language: str  # zh or en: the language the answer must be in


def answer_language(question: str) -> str:
    """The answer follows the question: Chinese when it has Chinese characters, else English."""
    return "zh" if has_cjk(question) else "en"


def not_found_phrase(language: str) -> str:
    return PROMPTS[language]["not_found"]


def passage_header(hit: Hit) -> str:
    """《title》 · issuer · date: what tells near-identical passages of different documents apart."""
    title = f"《{hit.title.strip('《》')}》" if hit.title else ""
    return " · ".join(part for part in (title, str(hit.meta.get("issuer") or ""), document_date(hit.meta)) if part)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit].rstrip() + "…"


def build_prompt(question: str, hits: list[Hit], max_chars: int, history: list[dict] | None = None,
                 completed: str = "") -> Prompt:
    """System and user messages; passages in rank order, the last one cut (or left out) to keep within max_chars."""
    language = answer_language(question)
    words = PROMPTS[language]
    system = words["system"].format(not_found=words["not_found"])
    asked = _cut(question.strip(), MAX_QUESTION_CHARS)
    if completed and completed.strip() != question.strip():
        asked = f"{asked}（{_cut(completed.strip(), MAX_QUESTION_CHARS)}）"
    turns = [words["turn"].format(question=_cut(str(t.get("question") or ""), MAX_TURN_CHARS),
                                  answer=_cut(str(t.get("answer") or ""), MAX_TURN_CHARS))
             for t in (history or [])[-MAX_TURNS:] if isinstance(t, dict) and t.get("question")]
    conversation = words["conversation"].format(turns="\n".join(turns)) if turns else ""
    frame = len(system) + len(words["user"].format(passages="", conversation=conversation, question=asked))
    budget = max_chars - frame
    blocks, passages = [], []
    for hit in hits:
        header = passage_header(hit)
        empty_block = words["passage"].format(n=len(passages) + 1, header=header, text="")
        room = budget - len(empty_block) - 2
        if room < min(MIN_PASSAGE_CHARS, len(hit.text)):
            break
        text = hit.text if len(hit.text) <= room else hit.text[:room - len(words["truncated"])]
        shown = text if text == hit.text else text + words["truncated"]
        blocks.append(words["passage"].format(n=len(passages) + 1, header=header, text=shown))
        passages.append(Passage(number=len(passages) + 1, text=text, header=header))
        budget -= len(blocks[-1]) + 2
    user = words["user"].format(passages="\n\n".join(blocks), conversation=conversation, question=asked)
    return Prompt(messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
                  passages=passages, language=language)
