"""Sparse vectors: categorical feature weights (static, IDF, learned), BM25 text, BGE-M3 lexical weights.

Each set is one row per anime over its own columns (a feature vocabulary, or hashed BM25 tokens)
and is indexed as a Qdrant sparse vector beside the dense ones, so variants can search it alone
or fuse it with the dense vectors (RRF, DBSF, weighted RRF).
"""
