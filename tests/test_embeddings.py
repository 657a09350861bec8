"""The embedder: cached question vectors equal fresh ones, the cache stays bounded, thread count is checked."""
from __future__ import annotations

import numpy as np
import pytest

from rag.search import embeddings
from rag.search.embeddings import Embedder


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


def test_cached_question_vectors_equal_fresh_ones(embedder):
    questions = ["2023年石家庄新增了多少家高新技术企业？", "How many high-tech enterprises in 2023?"]
    first = embedder.embed_queries(questions)
    again = embedder.embed_queries(list(reversed(questions)))
    fresh = Embedder().embed_queries(questions)
    assert first.shape == (2, embedder.dim) and first.dtype == np.float32
    np.testing.assert_array_equal(again, first[::-1])
    np.testing.assert_allclose(fresh, first, atol=1e-6)
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)


def test_question_cache_is_bounded(embedder, monkeypatch):
    monkeypatch.setattr(embeddings, "QUERY_CACHE_SIZE", 3)
    vectors = embedder.embed_queries([f"问题{i}" for i in range(5)])
    assert vectors.shape == (5, embedder.dim)
    assert len(embedder._queries) <= 3


def test_a_bad_thread_count_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(embeddings.THREADS_ENV, "two")
    with pytest.raises(ValueError, match="RAG_TORCH_THREADS"):
        Embedder().model
