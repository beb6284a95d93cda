"""The text-encoder kinds: ``embed.text_model.kind`` names one. Adding a model is a file beside this one
(a ``TextEncoder`` subclass) and a line here."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from animelab.encoders.bge_m3 import BgeM3Encoder
from animelab.encoders.minilm import MiniLMEncoder
from animelab.encoders.text import FlagTextEncoder, TextEncoder
from animelab.encoders.use import UseMultilingualEncoder

if TYPE_CHECKING:
    from animelab.params import TextModelParams

TEXT_ENCODERS: dict[str, type[TextEncoder]] = {
    "minilm": MiniLMEncoder,
    "bge-m3": BgeM3Encoder,
    "use-multilingual": UseMultilingualEncoder,
}


def text_encoder(params: TextModelParams) -> TextEncoder:
    """Load the configured text model (from its local path only)."""
    return TEXT_ENCODERS[params.kind](params)


def model_name(params: TextModelParams) -> str:
    """The name embeddings made with ``params`` carry (checked by every stage that reads them)."""
    return TEXT_ENCODERS[params.kind].model_name(params)


def resolve_model_path(params: TextModelParams) -> Path:
    """Where a FlagEmbedding kind loads from; a ModelPathError naming the param when it is missing."""
    kind = TEXT_ENCODERS[params.kind]
    if not issubclass(kind, FlagTextEncoder):
        raise TypeError(f"text model kind {params.kind!r} does not load from a model directory")
    return kind.resolve_path(params)
