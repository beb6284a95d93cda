"""Image encoder through open_clip (production: ViT-L/14 from a local checkpoint).

Images are never downloaded: they come from a local cache directory holding one file per URL,
named ``sha1(url)`` (any image format PIL reads). An anime's image vector is the mean of the
unit embeddings of its distinct cached images, re-normalised; an anime with no cached image
has no image vector.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from animelab.encoders.text import ModelPathError, mean_by_owner

if TYPE_CHECKING:
    from animelab.params import ImageModelParams


def cached_image(image_dir: Path | None, url: str) -> Path | None:
    if image_dir is None:
        return None
    path = Path(image_dir) / hashlib.sha1(url.encode("utf-8")).hexdigest()
    return path if path.is_file() else None


def open_clip_identifier(params: ImageModelParams) -> tuple[str, str | None]:
    """(model name, pretrained file) for open_clip; a checkpoint directory uses its own config."""
    checkpoint = params.checkpoint
    if checkpoint is None:
        raise ModelPathError("embed.image_model.checkpoint is required to embed images (a local open_clip checkpoint)")
    if checkpoint.is_dir():
        if not (checkpoint / "open_clip_config.json").is_file():
            raise ModelPathError(f"embed.image_model.checkpoint: {checkpoint} has no open_clip_config.json")
        return f"local-dir:{checkpoint}", None
    if not checkpoint.is_file():
        raise ModelPathError(f"embed.image_model.checkpoint: {checkpoint} does not exist")
    return params.name, str(checkpoint)


class ImageEncoder:
    def __init__(self, params: ImageModelParams):
        import open_clip
        import torch

        model_name, pretrained = open_clip_identifier(params)
        self.model, _, self.preprocess = open_clip.create_model_and_transforms(
            model_name, pretrained=pretrained, device=params.device
        )
        self.model.eval()
        self.params = params
        self.name = model_name if pretrained is None else f"{params.name}:{Path(pretrained).name}"
        self._torch = torch
        with torch.no_grad():
            self.dim = int(self.model.encode_image(torch.zeros(1, 3, *self._image_size())).shape[1])

    def _image_size(self) -> tuple[int, int]:
        size = self.model.visual.image_size
        return (size, size) if isinstance(size, int) else tuple(size)

    def encode_files(self, paths: list[Path]) -> np.ndarray:
        from PIL import Image

        rows = []
        torch = self._torch
        for start in range(0, len(paths), self.params.batch_size):
            batch = [self.preprocess(Image.open(path).convert("RGB")) for path in paths[start:start + self.params.batch_size]]
            with torch.no_grad():
                features = self.model.encode_image(torch.stack(batch).to(self.params.device))
            rows.append(torch.nn.functional.normalize(features, dim=-1).cpu().numpy())
        return np.concatenate(rows).astype(np.float32) if rows else np.zeros((0, self.dim), dtype=np.float32)

    def encode_image_sets(self, image_sets: list[list[Path]]) -> np.ndarray:
        """One mean embedding per set of image files (every set non-empty)."""
        files = [path for paths in image_sets for path in paths]
        owners = np.asarray([owner for owner, paths in enumerate(image_sets) for _ in paths])
        return mean_by_owner(self.encode_files(files), owners, len(image_sets))
