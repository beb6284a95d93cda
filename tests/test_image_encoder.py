"""Image vectors through open_clip on a tiny random checkpoint and generated images."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from PIL import Image

from animelab.embeddings import embed_image_vector
from animelab.encoders.image import ImageEncoder, cached_image, open_clip_identifier
from animelab.encoders.text import ModelPathError
from animelab.params import ImageModelParams


def cache_image(directory, url, colour):
    directory.mkdir(exist_ok=True)
    Image.new("RGB", (48, 40), colour).save(directory / hashlib.sha1(url.encode()).hexdigest(), format="PNG")


@pytest.fixture
def image_params(tiny_clip_dir, tmp_path):
    return ImageModelParams(name="tiny", checkpoint=tiny_clip_dir, image_dir=tmp_path / "images", batch_size=2)


def test_image_vector_is_the_mean_of_distinct_cached_images(enriched_sample, image_params):
    entry = next(e for e in enriched_sample if len(e.images.covers) >= 2)
    first_url, second_url = entry.images.covers[:2]
    cache_image(image_params.image_dir, first_url, (200, 30, 30))
    cache_image(image_params.image_dir, second_url, (20, 40, 220))
    encoder = ImageEncoder(image_params)

    vectors, stats = embed_image_vector(enriched_sample, "image_vector", image_params.image_dir, lambda: encoder)

    assert vectors.ids == [entry.id] and stats["count"] == 1 and stats["images_found"] == 2
    singles = encoder.encode_files([cached_image(image_params.image_dir, u) for u in (first_url, second_url)])
    expected = singles.mean(axis=0) / np.linalg.norm(singles.mean(axis=0))
    assert vectors.dense.shape == (1, encoder.dim) == (1, 16)
    assert np.allclose(vectors.dense[0], expected, atol=1e-5)
    assert not np.allclose(singles[0], singles[1]), "different pictures must embed differently"


def test_character_images_feed_the_character_image_vector(enriched_sample, image_params):
    entry = next(e for e in enriched_sample if any(c.images for c in e.characters))
    url = next(c.images[0] for c in entry.characters if c.images)
    cache_image(image_params.image_dir, url, (0, 128, 0))
    vectors, stats = embed_image_vector(
        enriched_sample, "character_image_vector", image_params.image_dir, lambda: ImageEncoder(image_params)
    )
    assert vectors.ids == [entry.id] and stats["images_found"] == 1


def test_without_cached_images_nothing_is_embedded_and_no_model_is_loaded(enriched_sample, tmp_path):
    def no_model():
        raise AssertionError("the image model must not be loaded when there are no images")

    vectors, stats = embed_image_vector(enriched_sample, "image_vector", tmp_path, no_model)
    assert vectors is None
    assert stats["count"] == 0 and stats["images_found"] == 0
    assert stats["anime_with_image_urls"] == len(enriched_sample)


def test_missing_checkpoint_names_the_param(tmp_path):
    with pytest.raises(ModelPathError, match=r"embed\.image_model\.checkpoint is required"):
        open_clip_identifier(ImageModelParams(name="ViT-L-14", batch_size=1))
    with pytest.raises(ModelPathError, match=r"embed\.image_model\.checkpoint: .*/missing.bin does not exist"):
        open_clip_identifier(ImageModelParams(name="ViT-L-14", checkpoint=tmp_path / "missing.bin", batch_size=1))
