"""The semantic feature: the cosine of a candidate's sentence and the question (multilingual-e5), for the few
sentences with the best term coverage; sentence vectors are kept in an LRU between questions."""
from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from rag.qa.features import Candidate
from rag.qa.question import QuestionInfo
from rag.types import Hit

MAX_EMBEDDED = 4  # sentences embedded per question (best term coverage first): 4 keep answer p95 under 150 ms on 2 CPUs
MAX_EMBEDDED_CHARS = 120  # a longer sentence is embedded by its first 120 characters (the cost grows with length)
EMBED_CACHE_SIZE = 8192  # sentence vectors kept between questions (the same paragraphs come back often)
SEM_CENTER = 0.85  # multilingual-e5 cosines sit in 0.75–0.95

_embed_cache: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
_embed_lock = threading.Lock()


def embed_cached(embedder, texts: list[str]) -> np.ndarray:
    """Passage vectors of sentences, computing only those not seen recently (an LRU keyed by model and text).

    Question vectors are cached by the embedder itself (rag.search.embeddings.Embedder.embed_queries).
    """
    model = str(getattr(embedder, "model_id", id(embedder)))
    with _embed_lock:
        known = {t: _embed_cache[(model, t)] for t in texts if (model, t) in _embed_cache}
        for text in known:
            _embed_cache.move_to_end((model, text))
    missing = [t for t in dict.fromkeys(texts) if t not in known]
    if missing:
        vectors = np.asarray(embedder.embed_passages(missing), dtype=np.float32)
        known.update(zip(missing, vectors))
        with _embed_lock:
            _embed_cache.update(((model, t), v) for t, v in zip(missing, vectors))
            while len(_embed_cache) > EMBED_CACHE_SIZE:
                _embed_cache.popitem(last=False)
    return np.stack([known[t] for t in texts]) if texts else np.zeros((0, 0), dtype=np.float32)


def forget_sentences() -> None:
    """Empty the sentence-vector cache (benchmarks time every question as new)."""
    with _embed_lock:
        _embed_cache.clear()


def add_semantic(info: QuestionInfo, hits: list[Hit], cands: list[Candidate], embedder) -> None:
    """Embed the sentences with the best term coverage (once each) and give each candidate its sentence's
    cosine with the question (centred); the others get the lowest cosine measured."""
    if embedder is None or not cands:
        return
    best: dict[tuple[int, int, int], float] = {}
    for c in cands:
        key = (c.piece.hit, c.piece.sent_start, c.piece.sent_end)
        best[key] = max(best.get(key, -9.0), c.features.get("coverage", 0.0) + 0.1 * c.features.get("rank", 0.0))
    keys = sorted(best, key=lambda k: -best[k])[:MAX_EMBEDDED]
    texts = [hits[h].text[s:min(e, s + MAX_EMBEDDED_CHARS)] for h, s, e in keys]
    qvec = embedder.embed_queries([info.question])[0]
    sims = dict(zip(keys, (embed_cached(embedder, texts) @ qvec).tolist()))
    floor = min(sims.values())
    for c in cands:
        c.features["semantic"] = float(sims.get((c.piece.hit, c.piece.sent_start, c.piece.sent_end), floor)) - SEM_CENTER
