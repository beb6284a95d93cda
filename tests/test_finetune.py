"""Genre fine-tuning: the leakage guard, a real LoRA epoch on MiniLM, the adapter round trip, the F1 probe."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from animelab.corpus.readers import FORMATS
from animelab.encoders.minilm import MiniLMEncoder
from animelab.encoders.registry import text_encoder
from animelab.encoders.text import ModelPathError
from animelab.finetune import probe
from animelab.finetune.lora import AdapterModel, DevSet, TrainingData, info_nce, sup_con, train_adapter
from animelab.finetune.pairs import (
    Batch, LeakageError, LeakageGuard, Pair, batches, confusable_negatives, genre_text, labels, query_pairs,
    synopsis_pairs,
)
from animelab.gold.build import HandWritten, anime_split, build_gold
from animelab.params import FinetuneParams, GoldParams, LoraParams, SplitParams
from tests.conftest import REPO, minilm_params

SPLIT = SplitParams(train=0.6, dev=0.1, test=0.3)


@pytest.fixture(scope="module")
def slice_entries(mal_lines):
    source = FORMATS["jikan"]
    return [source.parse(json.loads(line)) for line in mal_lines[:80]]


@pytest.fixture(scope="module")
def slice_gold(slice_entries):
    params = GoldParams(curated="unused.yaml", paraphrase="unused.yaml", judgements="unused.jsonl", pool="unused.jsonl",
                        split=SPLIT, min_relevant=2, max_relevant=40, facet_phrasings=2,
                        hard_negatives_per_query=0, cross_lingual_min_synopsis_chars=10, similar_min_jaccard=0.6,
                        max_queries={}, min_test_queries=1)
    gold = build_gold(slice_entries, [], HandWritten({}, []), params, seed=3)
    qrels = {q.id: dict(q.qrels) for q in gold.queries}
    return gold.queries, qrels, anime_split(slice_entries, SPLIT, seed=3)["splits"]


def finetune_params(**changes) -> FinetuneParams:
    values = dict(vectors=["genre_vector"], query_categories=["facet"], pairs_per_query=2,
                  lora=LoraParams(r=4, alpha=8, dropout=0.0, target_modules=["query", "value"]), learning_rate=2e-3,
                  epochs=1, patience=0, batch_size=8, max_length=64, probe_max_length=64, temperature=0.05, supcon_weight=0.5,
                  supcon_min_jaccard=0.5, hard_negative_pool=5, knn_k=3, permutations=200, registry_name="test")
    return FinetuneParams(**(values | changes))


def train_pairs(entries, gold):
    queries, qrels, splits = gold
    pairs = query_pairs(queries, qrels, splits, ["facet"], 2, "train", seed=3) + synopsis_pairs(entries, splits, "train")
    return [p for p in pairs if genre_text(next(e for e in entries if e.id == p.anime_id))]


def test_training_pairs_and_batches_hold_only_train_anime_and_train_phrasings(slice_entries, slice_gold):
    queries, qrels, splits = slice_gold
    pairs = train_pairs(slice_entries, slice_gold)
    assert {p.source for p in pairs} == {"query", "synopsis"}
    assert {splits[p.anime_id] for p in pairs} == {"train"}
    held_out = {q.text for q in queries if q.split != "train"}
    assert held_out and not held_out & {p.anchor for p in pairs}
    guard = LeakageGuard(splits, queries)
    for batch in batches(pairs, {p.anime_id: None for p in pairs}, 8, np.random.default_rng(0)):
        guard.check(batch)
    assert guard.checked == -(-len(pairs) // 8)


@pytest.mark.parametrize("leak", ["test_anime", "dev_negative", "test_phrasing"])
def test_the_guard_refuses_a_batch_with_held_out_data(slice_gold, leak):
    queries, _, splits = slice_gold
    train_anime = next(a for a, s in splits.items() if s == "train")
    test_anime = next(a for a, s in splits.items() if s == "test")
    dev_anime = next(a for a, s in splits.items() if s == "dev")
    test_text = next(q.text for q in queries if q.split == "test")
    batch = {
        "test_anime": Batch([Pair("a story", test_anime, "synopsis")], []),
        "dev_negative": Batch([Pair("a story", train_anime, "synopsis")], [dev_anime]),
        "test_phrasing": Batch([Pair(test_text.upper(), train_anime, "query")], []),
    }[leak]
    with pytest.raises(LeakageError):
        LeakageGuard(splits, queries).check(batch)


def test_confusable_negatives_differ_in_genres_and_are_the_most_similar():
    vectors = np.array([[1.0, 0.0], [0.99, 0.14], [0.9, 0.43], [0.0, 1.0]], dtype=np.float32)
    label_sets = [frozenset({"genre:Comedy"}), frozenset({"genre:Comedy", "theme:School"}),
                  frozenset({"genre:Drama"}), frozenset({"genre:Horror"})]
    negatives = confusable_negatives(["a", "b", "c", "d"], vectors, label_sets, pool=3)
    # b has the same genres as a (only a theme differs): not a confusion; c is the nearest other genre.
    assert negatives["a"] == "c" and negatives["b"] == "c" and negatives["c"] in {"a", "b"}


def test_losses_prefer_the_aligned_arrangement():
    import torch

    anchors = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), dim=-1)
    aligned = info_nce(anchors, anchors.clone(), ["x", "y"], ["x", "y"], 0.1)
    swapped = info_nce(anchors, anchors.flip(0), ["x", "y"], ["x", "y"], 0.1)
    assert aligned < swapped
    # Same positive text on both sides: the other candidate is masked, not a negative, so the loss is zero.
    assert info_nce(anchors, anchors.flip(0), ["x", "x"], ["x", "x"], 0.1).item() == pytest.approx(0.0, abs=1e-6)
    same = [frozenset({"genre:A"}), frozenset({"genre:A"}), frozenset({"genre:B"}), frozenset({"genre:B"})]
    clustered = torch.nn.functional.normalize(torch.tensor([[1.0, 0.1], [1.0, -0.1], [0.1, 1.0], [-0.1, 1.0]]), dim=-1)
    assert sup_con(clustered, same, 0.5, 0.1) < sup_con(clustered[[0, 2, 1, 3]], same, 0.5, 0.1)


@pytest.fixture(scope="module")
def trained(slice_entries, slice_gold, tmp_path_factory):
    queries, qrels, splits = slice_gold
    params = finetune_params()
    pairs = train_pairs(slice_entries, slice_gold)
    train_entries = [e for e in slice_entries if splits[e.id] == "train" and genre_text(e)]
    data = TrainingData({e.id: genre_text(e) for e in train_entries}, {e.id: labels(e) for e in train_entries})
    model = AdapterModel(text_encoder(minilm_params()), params.lora, seed=3)
    before = model.lora_state()
    no_dev = DevSet([], [], [], [], {})
    result = train_adapter(model, lambda epoch: batches(pairs, {}, params.batch_size, np.random.default_rng(epoch)),
                           data, LeakageGuard(splits, queries), no_dev, params)
    adapter = tmp_path_factory.mktemp("adapter")
    model.save(adapter)
    return model, before, result, adapter


def test_one_epoch_changes_the_adapter_and_lowers_the_training_loss(trained):
    model, before, result, _ = trained
    after = model.lora_state()
    assert set(after) == set(before)
    changed = [name for name in before if not np.allclose(before[name].numpy(), after[name].numpy())]
    assert any("lora_B" in name for name in changed) and any("lora_A" in name for name in changed)
    initial, final = result.history[0]["monitor_loss"], result.history[1]["monitor_loss"]
    assert final < initial
    assert result.best_epoch == 1 and result.batches_checked > 0


def test_training_under_bfloat16_autocast_learns_repeatably_and_keeps_float32_weights(slice_entries, slice_gold):
    queries, qrels, splits = slice_gold
    params = finetune_params(bf16_autocast=True)
    train_entries = [e for e in slice_entries if splits[e.id] == "train" and genre_text(e)]
    data = TrainingData({e.id: genre_text(e) for e in train_entries}, {e.id: labels(e) for e in train_entries})
    pairs = train_pairs(slice_entries, slice_gold)
    states = []
    for _ in range(2):
        model = AdapterModel(text_encoder(minilm_params()), params.lora, seed=3)
        result = train_adapter(model, lambda epoch: batches(pairs, {}, params.batch_size, np.random.default_rng(epoch)),
                               data, LeakageGuard(splits, queries), DevSet([], [], [], [], {}), params)
        assert result.history[1]["monitor_loss"] < result.history[0]["monitor_loss"]
        states.append(model.lora_state())
    assert {tensor.dtype for tensor in states[0].values()} == {torch.float32}
    assert all(torch.equal(states[0][name], states[1][name]) for name in states[0])


def test_adapter_round_trip_gives_identical_embeddings(trained):
    model, _, _, adapter = trained
    texts = ["a lighthearted comedy about a school club", "giant robots fight an alien invasion"]
    first = text_encoder(minilm_params(adapter=adapter)).encode_queries(texts).dense
    second = text_encoder(minilm_params(adapter=adapter)).encode_queries(texts).dense
    assert np.array_equal(first, second)
    # Merged into the weights for inference: the same function as the trained peft model.
    np.testing.assert_allclose(first, model.encode(texts, max_length=128), atol=1e-5)
    base = text_encoder(minilm_params()).encode_queries(texts).dense
    assert not np.allclose(first, base, atol=1e-4)
    assert text_encoder(minilm_params(adapter=adapter)).name.startswith("sentence-transformers/all-MiniLM-L6-v2+lora:")


def test_a_saved_adapter_is_the_same_bytes_whatever_the_hash_seed_and_the_checkout(tmp_path):
    """peft holds target_modules as a set: unsorted, the saved config changed with the interpreter's hash seed,
    and DVC saw a new adapter on every run. It also names the base model by the directory it was loaded from,
    which for the packaged model lies in the checkout's venv: two clones' adapters differed there."""
    script = ("import sys\n"
              "from pathlib import Path\n"
              "from animelab.encoders.registry import text_encoder\n"
              "from animelab.finetune.lora import AdapterModel\n"
              "from animelab.params import LoraParams\n"
              "from tests.conftest import minilm_params\n"
              "lora = LoraParams(r=2, alpha=4, dropout=0.0, target_modules=['query', 'key', 'value', 'dense'])\n"
              "AdapterModel(text_encoder(minilm_params()), lora, 0).save(Path(sys.argv[1]))\n")
    saved = []
    for seed in ("0", "1", "2"):
        subprocess.run([sys.executable, "-c", script, str(tmp_path / seed)], check=True, cwd=REPO,
                       env=os.environ | {"PYTHONHASHSEED": seed})
        saved.append({file.name: file.read_bytes() for file in sorted((tmp_path / seed).iterdir())})
    assert saved[0] == saved[1] == saved[2]
    assert set(json.loads(saved[0]["adapter_config.json"])["target_modules"]) == {"query", "key", "value", "dense"}
    packaged_model = str(MiniLMEncoder.default_path()).encode()
    assert not any(packaged_model in content for content in saved[0].values())


def test_a_missing_adapter_names_the_param(tmp_path):
    with pytest.raises(ModelPathError, match="text_model.adapter"):
        text_encoder(minilm_params(adapter=tmp_path))


def test_knn_probe_and_paired_f1_test_on_separable_labels():
    rng = np.random.default_rng(0)
    centres = {"Action": np.array([1.0, 0.0, 0.0]), "Romance": np.array([0.0, 1.0, 0.0])}
    def sample(n):
        names = [list(centres)[i % 2] for i in range(n)]
        return rng.normal(0, 0.1, (n, 3)) + np.stack([centres[name] for name in names]), [[name] for name in names]
    train_x, train_y = sample(40)
    test_x, test_y = sample(30)
    train_truth, test_truth = probe.label_matrix(train_y, test_y)
    good = probe.knn_predictions(train_x, train_truth, test_x, k=5)
    assert probe.f1(test_truth, good, "micro") == 1.0
    noisy = rng.normal(0, 1, test_x.shape)
    bad = probe.knn_predictions(train_x, train_truth, noisy, k=5)
    better = probe.paired_f1_test(test_truth, bad, good, "macro", 500, seed=1)
    assert better["delta"] > 0.3 and better["p_value"] < 0.01
    same = probe.paired_f1_test(test_truth, good, good, "micro", 200, seed=1)
    assert same["delta"] == 0 and same["p_value"] == 1.0


@pytest.mark.parametrize("average", probe.AVERAGES)
def test_the_permutation_statistic_is_scikit_learns_f1_difference(average):
    """The permutation test scores resamples from per-label counts: the same F1 as scikit-learn's, on labels
    no anime has and labels never predicted too, and its p-value is a permutation test's."""
    rng = np.random.default_rng(5)
    truth = (rng.random((300, 12)) < 0.2).astype(int)
    truth[:, 3] = 0
    base = (rng.random(truth.shape) < 0.15).astype(int)
    tuned = np.where(rng.random(truth.shape) < 0.4, truth, base)
    tuned[:, 8] = 0
    for rows in (base, tuned, truth):
        counts = [(rows & truth).sum(0), (rows & (1 - truth)).sum(0), ((1 - rows) & truth).sum(0)]
        assert probe.f1_of_counts(*counts, average) == pytest.approx(probe.f1(truth, rows, average), abs=1e-12)
    result = probe.paired_f1_test(truth, base, tuned, average, 300, seed=2)
    assert result["delta"] == pytest.approx(result["tuned"] - result["base"], abs=1e-12)
    assert result["delta"] > 0.1 and 0 < result["p_value"] < 0.01
    # Swapping the encoders flips the sign, not the evidence.
    swapped = probe.paired_f1_test(truth, tuned, base, average, 300, seed=2)
    assert swapped["delta"] == pytest.approx(-result["delta"]) and swapped["p_value"] == result["p_value"]


def test_the_adapter_path_works_for_bge_m3(tiny_bge_m3_dir, tmp_path):
    import torch

    params = minilm_params(kind="bge-m3", path=tiny_bge_m3_dir)
    model = AdapterModel(text_encoder(params), LoraParams(r=2, alpha=4, dropout=0.0, target_modules=["query", "value"]),
                         seed=0)
    optimizer = torch.optim.Adam([p for p in model.model.parameters() if p.requires_grad], lr=0.05)
    texts = ["giant robots", "a quiet romance"]
    for _ in range(5):  # pull the two texts together: a change large enough to see in the embeddings
        (model.embed(texts[:1], 32) @ model.embed(texts[1:], 32).T).neg().sum().backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save(tmp_path / "adapter")
    tuned = text_encoder(minilm_params(kind="bge-m3", path=tiny_bge_m3_dir, adapter=tmp_path / "adapter"))
    np.testing.assert_allclose(tuned.encode_queries(texts).dense, model.encode(texts, 128), atol=1e-5)
    assert tuned.encode_queries(texts).sparse is not None
    assert not np.allclose(text_encoder(params).encode_queries(texts).dense, model.encode(texts, 128), atol=1e-4)
