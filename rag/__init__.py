"""Offline question answering with cited source spans over Chinese government replies.

    import rag
    index = rag.build_index("corpus", "index")
    hits = index.search("2023年新增多少家高新技术企业", k=5)
    answer = rag.answer("How many high-tech enterprises were added in 2023?")
"""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from rag.search.index import BuildReport, Index, build_index, index_exists, load_index
from rag.types import Answer, Chunk, Document, Hit, IndexLoadError, QuestionTooLong, RagError

__all__ = [
    "Answer", "BuildReport", "Chunk", "Document", "Hit", "Index", "IndexLoadError", "QuestionTooLong", "RagError",
    "answer", "build_index", "default_index", "evaluate", "load_index", "retrieve",
]

_DEFAULT: dict[tuple[str, str, str | None], Index] = {}
_DEFAULT_LOCK = threading.Lock()


def default_index(index_dir: str | os.PathLike | None = None, corpus_dir: str | os.PathLike | None = None,
                  model: str | None = None) -> Index:
    """The index in ./index (or $RAG_INDEX_DIR), built from ./corpus (or $RAG_CORPUS_DIR; a folder or one file)
    when missing."""
    index_dir = str(index_dir or os.environ.get("RAG_INDEX_DIR", "index"))
    corpus_dir = str(corpus_dir or os.environ.get("RAG_CORPUS_DIR", "corpus"))
    model = model or os.environ.get("RAG_MODEL") or None
    key = (str(Path(index_dir).resolve()), str(Path(corpus_dir).resolve()), model)
    with _DEFAULT_LOCK:
        if key not in _DEFAULT:
            if index_exists(index_dir):
                _DEFAULT[key] = load_index(index_dir, model=model)
            else:
                _DEFAULT[key] = build_index(corpus_dir, index_dir, model=model)
        return _DEFAULT[key]


def retrieve(question: str, k: int = 5, mode: str = "hybrid", filters: dict[str, Any] | None = None,
             index_dir: str | os.PathLike | None = None, corpus_dir: str | os.PathLike | None = None) -> list[Hit]:
    """Search the default index (built on first use) for the k best paragraphs."""
    return default_index(index_dir, corpus_dir).search(question, k=k, mode=mode, filters=filters)


def answer(question: str, k: int = 5, mode: str = "hybrid", filters: dict[str, Any] | None = None,
           index_dir: str | os.PathLike | None = None, corpus_dir: str | os.PathLike | None = None,
           history: list[dict] | None = None, generate: bool = False) -> Answer:
    """Answer from the default index (built on first use), with highlighted citations; `history` and `generate`
    (written by the language model of RAG_LLM_BASE_URL, checked) as Index.answer."""
    return default_index(index_dir, corpus_dir).answer(question, k=k, mode=mode, filters=filters, history=history,
                                                       generate=generate)


def evaluate(*args, **kwargs):
    """Run an eval set (see rag.evaluation.evaluate)."""
    from rag.evaluation import evaluate as _evaluate

    return _evaluate(*args, **kwargs)
