"""Sentence embeddings for passages and queries, with the model's own prompts."""
from __future__ import annotations

from functools import cached_property

import numpy as np

from rag.text import squeeze

BATCH_SIZE = 16  # measured: on 2 cores batch 16 beats 64


class Embedder:
    """Wraps a sentence-transformers model; vectors are float32 and L2-normalised."""

    def __init__(self, model: str | None = None):
        from rag.model import model_id

        self.model_name = model
        self.model_id = model_id(model)

    @cached_property
    def model(self):
        from rag.model import load_sentence_transformer

        return load_sentence_transformer(self.model_name)

    @property
    def dim(self) -> int:
        return int(self.model.get_sentence_embedding_dimension())

    def embed_passages(self, texts: list[str], progress: bool = False) -> np.ndarray:
        """Embed document passages (the model adds its passage prompt)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode_document(
            [squeeze(t) for t in texts],
            batch_size=BATCH_SIZE,
            normalize_embeddings=True,
            show_progress_bar=progress,
            convert_to_numpy=True,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        """Embed questions (the model adds its query prompt)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode_query(
            [squeeze(t) for t in texts],
            batch_size=BATCH_SIZE,
            normalize_embeddings=True,
            convert_to_numpy=True,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)
