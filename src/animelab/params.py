"""params.yaml, validated once: every stage gets its own typed section from ``load_params``.

Unknown keys are errors (a typo must not silently fall back to a default), and every error
names the offending key as a dotted path, e.g. ``embed.text_model.max_length``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from animelab.errors import LabError
from animelab.fields import VECTOR_NAMES


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataParams(Section):
    mal_seasons: Path
    enriched: Path
    bangumi: Path


class IngestParams(Section):
    max_quarantined_share: float = Field(ge=0, le=1)


class TextModelParams(Section):
    kind: Literal["minilm", "bge-m3"]
    path: Path | None = Field(default=None, description="local model directory; null = the installed MiniLM")
    max_length: int = Field(ge=16, le=8192)
    batch_size: int = Field(ge=1)
    query_instruction: str = ""
    device: str = "cpu"
    use_fp16: bool = False


class ImageModelParams(Section):
    name: str = Field(description="open_clip architecture, e.g. ViT-L-14, used with a checkpoint file")
    checkpoint: Path | None = Field(
        default=None, description="weights file for `name`, or a directory with open_clip_config.json + weights"
    )
    image_dir: Path | None = Field(default=None, description="local image cache; a file per URL named sha1(url)")
    batch_size: int = Field(ge=1)
    device: str = "cpu"


class EmbedParams(Section):
    text_model: TextModelParams
    image_model: ImageModelParams
    vectors: list[str]

    @field_validator("vectors")
    @classmethod
    def known_vectors(cls, vectors: list[str]) -> list[str]:
        unknown = sorted(set(vectors) - set(VECTOR_NAMES))
        if unknown:
            raise ValueError(f"unknown vectors {unknown}; known: {list(VECTOR_NAMES)}")
        return vectors


class Params(Section):
    seed: int
    data: DataParams
    ingest: IngestParams
    embed: EmbedParams


class ParamsError(LabError):
    pass


def describe(error: ValidationError, source: Path) -> str:
    lines = [f"{source}: invalid params"]
    for detail in error.errors():
        key = ".".join(str(part) for part in detail["loc"])
        lines.append(f"  {key}: {detail['msg']}")
    return "\n".join(lines)


def load_params(path: Path | str = "params.yaml") -> Params:
    """Read and validate params; relative data/model paths stay relative to the working directory."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise ParamsError(f"params file not found: {path}") from error
    try:
        return Params.model_validate(raw)
    except ValidationError as error:
        raise ParamsError(describe(error, path)) from error
