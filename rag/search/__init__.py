"""Search: tokens, embeddings, the offline model, the index (FAISS + BM25) and fused retrieval."""
