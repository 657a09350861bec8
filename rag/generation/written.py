"""A written answer from the user's language model, checked sentence by sentence; any fault falls back to the
extracted answer with a one-line reason, so the model can only add to what the product already gives."""
from __future__ import annotations

import re
from dataclasses import replace
from typing import Callable

from rag.generation.check import CITATION_RE, check_written
from rag.generation.client import ChatClient, GenerationFailed, LLMConfig
from rag.generation.prompt import PROMPTS, build_prompt, not_found_phrase
from rag.text import CJK_RE, normalize
from rag.types import Answer, Hit, merge_spans

_THINKING_RE = re.compile(r"<think>.*?(?:</think>|$)", re.DOTALL)  # reasoning models' scratchpad (Qwen3, R1)
_LATIN_RE = re.compile(r"[A-Za-z]")
REFUSAL_MARKERS = tuple(PROMPTS["refusal_markers"])
_CITATION_WORDS_RE = re.compile("|".join(re.escape(w) for w in sorted(PROMPTS["citation_words"], key=len, reverse=True)),
                                re.IGNORECASE)
NOT_CONFIGURED = "no language model is configured (set RAG_LLM_BASE_URL or --llm-base-url): the extracted answer is shown"


def fallback(extractive: Answer, reason: str) -> Answer:
    """The extracted answer, saying in one line why the written one is not shown."""
    return replace(extractive, note=reason)


def strip_thinking(text: str) -> str:
    """The reply without a reasoning model's <think> scratchpad (also while it streams in, unclosed)."""
    return _THINKING_RE.sub("", text or "").strip()


def _language_of(text: str) -> str:
    """zh when Chinese characters make up a fair share of the letters (an English answer may quote a name)."""
    cjk, latin = len(CJK_RE.findall(text)), len(_LATIN_RE.findall(text))
    if cjk + latin == 0:
        return ""
    return "zh" if cjk >= 0.25 * (cjk + latin / 4) else "en"


def _says_not_found(text: str, language: str) -> bool:
    """Whether the reply is the not-found phrase (perhaps with a marker or a few words around it)."""
    bare = CITATION_RE.sub("", normalize(text)).strip(" .。!！")
    phrases = {normalize(not_found_phrase(lang)).strip(" .。") for lang in ("zh", "en")}
    return any(phrase in bare and len(bare) <= len(phrase) + 20 for phrase in phrases)


def _only_citations(text: str) -> bool:
    """「材料[2]」, "See passages [1] and [3].": a reply that points at passages and says nothing of its own."""
    rest = _CITATION_WORDS_RE.sub("", CITATION_RE.sub("", normalize(text)))
    return not re.search(r"[^\W_]", rest)


def _refusal(text: str) -> str:
    head = normalize(text[:200])
    return next((marker for marker in REFUSAL_MARKERS if normalize(marker) in head), "")


def written_answer(question: str, hits: list[Hit], extractive: Answer, config: LLMConfig | None,
                   history: list[dict] | None = None, completed: str = "",
                   on_text: Callable[[str], None] | None = None, client: ChatClient | None = None) -> Answer:
    """The model's answer over the top passages with its check, or the extracted answer with the reason it is not."""
    if config is None:
        return fallback(extractive, NOT_CONFIGURED)
    if not hits:
        return fallback(extractive, "no passage was found to write an answer from")
    prompt = build_prompt(question, hits, config.max_prompt_chars, history, completed)
    if not prompt.passages:
        return fallback(extractive, "the passages do not fit the prompt cap (RAG_LLM_MAX_PROMPT_CHARS)")
    try:
        raw = (client or ChatClient(config)).complete(prompt.messages, on_text)
    except GenerationFailed as failure:
        return fallback(extractive, str(failure))
    text = strip_thinking(raw)
    if not text:
        return fallback(extractive, "the language model returned an empty answer")
    if _says_not_found(text, prompt.language):
        return fallback(extractive, "the language model found no answer in the passages")
    if _only_citations(text):
        return fallback(extractive, "the language model only pointed at passages and wrote no answer")
    marker = _refusal(text)
    if marker:
        return fallback(extractive, f"the language model declined to answer ({marker}…)")
    language = _language_of(CITATION_RE.sub("", text))
    if language and language != prompt.language:
        names = {"zh": "Chinese", "en": "English"}
        return fallback(extractive, f"the language model answered in {names[language]} to a question in "
                                    f"{names[prompt.language]}")
    statements = check_written(text, prompt.passages)
    citations = []
    for passage, hit in zip(prompt.passages, hits):
        spans = [(s, e) for st in statements for n, s, e in st.support if n == passage.number]
        citations.append(replace(hit, highlights=merge_spans(spans)))
    unsupported: list[str] = []
    for statement in statements:
        if statement.supported:
            continue
        unsupported.extend(statement.failed + ([statement.text] if statement.citation_fault else []))
    return Answer(question=question, text=text, found=True, citations=citations, kind=extractive.kind,
                  exact=False, completed_question=extractive.completed_question, generated=True,
                  verified=all(s.supported for s in statements), unsupported=list(dict.fromkeys(unsupported)),
                  statements=statements, extractive=extractive)
