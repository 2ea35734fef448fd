"""The index: embeddings, the Chroma + BM25 store and retrieval."""
