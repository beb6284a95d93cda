"""BGE-M3, the production text model: 1024-d dense vectors plus lexical (sparse) token weights,
loaded from a local directory with its ColBERT and sparse heads."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import sparse

from animelab.encoders.text import EncodedTexts, FlagTextEncoder


class BgeM3Encoder(FlagTextEncoder):
    MODEL_NAME = "BAAI/bge-m3"
    POOLING = "cls"
    REQUIRED_FILES = ("config.json", "colbert_linear.pt", "sparse_linear.pt")
    has_sparse = True

    def flag_model(self, path: str, options: dict[str, Any]) -> Any:
        from FlagEmbedding import BGEM3FlagModel

        return BGEM3FlagModel(path, return_sparse=True, **options)

    @property
    def transformer(self):
        return self.model.model.model

    @transformer.setter
    def transformer(self, module) -> None:
        self.model.model.model = module

    def _run(self, texts: list[str], query: bool) -> EncodedTexts:
        encode = self.model.encode_queries if query else self.model.encode_corpus
        output = encode(texts, batch_size=self.params.batch_size, max_length=self.params.max_length)
        return EncodedTexts(dense=np.asarray(output["dense_vecs"], dtype=np.float32),
                            sparse=self.lexical_matrix(output["lexical_weights"]))

    def lexical_matrix(self, weights: list[dict[str, float]]) -> sparse.csr_matrix:
        rows, columns, values = [], [], []
        for row, token_weights in enumerate(weights):
            for token, weight in token_weights.items():
                rows.append(row)
                columns.append(int(token))
                values.append(float(weight))
        return sparse.csr_matrix((values, (rows, columns)), shape=(len(weights), self.vocab_size), dtype=np.float32)
