"""Variant definitions: the committed file, merging over the baseline, and errors that say what is wrong."""

from __future__ import annotations

import pytest

from animelab.errors import LabError
from animelab.evaluation.runner import comparison_families
from animelab.evaluation.experiments import IndexOverrides, load_experiments
from tests.conftest import REPO


def test_committed_variants_cover_the_axes(repo_params):
    experiments = load_experiments(REPO / repo_params.evaluate.experiments)
    assert experiments.baseline.search.exact and experiments.baseline.search.vectors == "all"
    axes = {variant.axis for variant in experiments.variants}
    assert {"hnsw", "quantization", "vectors", "fusion", "model"} <= axes
    assert len(experiments.variants) >= 12


def test_a_variant_changes_only_what_it_names(tmp_path):
    path = tmp_path / "variants.yaml"
    path.write_text(
        "baseline: {search: {vectors: all, fusion: rrf, rrf_k: 60, exact: true, prefetch_limit: 50}}\n"
        "variants:\n"
        "  - {name: k2, axis: fusion, search: {rrf_k: 2}}\n"
        "  - {name: scalar, axis: quantization, index: {quantization: {kind: scalar, quantile: 0.99}},\n"
        "     search: {exact: false, hnsw_ef: 64}}\n"
    )
    baseline, k2, scalar = load_experiments(path).all()
    assert k2.search.rrf_k == 2 and k2.search.exact and k2.search.prefetch_limit == 50
    assert scalar.search.hnsw_ef == 64 and not scalar.search.exact and scalar.search.rrf_k == 60
    assert baseline.name == "baseline"


def test_index_overrides_reach_every_priority(repo_params):
    overrides = IndexOverrides.model_validate({"hnsw": {"m": 8}, "quantization": {"kind": "binary"}})
    changed = overrides.apply(repo_params.index)
    for name, settings in changed.priorities.items():
        assert settings.hnsw.m == 8
        assert settings.hnsw.ef_construct == repo_params.index.priorities[name].hnsw.ef_construct
        assert settings.quantization.kind == "binary"


@pytest.mark.parametrize(
    ("variant", "message"),
    [
        ("{name: w, axis: fusion, search: {fusion: dbsf, weights: priority}}", "weights apply to RRF fusion only"),
        ("{name: v, axis: vectors, search: {vectors: [plot_vector]}}", "unknown text vectors"),
        ("{name: q, axis: quantization, index: {quantization: {kind: binary, quantile: 0.9}}}",
         "quantile applies to scalar quantization only"),
        ("{name: x, axis: fusion, search: {rrf_k: 2}, colour: red}", "Extra inputs are not permitted"),
        ("{name: baseline, axis: fusion}", "duplicate variant names"),
        ("{name: t, axis: genre_ft, model: genre_ft, holdout: true, compare_to: baseline}", "must agree on holdout"),
        ("{name: t, axis: genre_ft, model: genre_ft, compare_to: nothing}", "compare_to must name a variant"),
    ],
)
def test_invalid_variants_are_refused_with_the_reason(tmp_path, variant, message):
    path = tmp_path / "variants.yaml"
    path.write_text("baseline: {search: {exact: true}}\nvariants:\n  - " + variant + "\n")
    with pytest.raises(LabError, match=message):
        load_experiments(path)


def test_held_out_variants_form_their_own_comparison_family(tmp_path):
    path = tmp_path / "variants.yaml"
    path.write_text(
        "baseline: {search: {exact: true}}\n"
        "variants:\n"
        "  - {name: k2, axis: fusion, search: {rrf_k: 2}}\n"
        "  - {name: base, axis: genre_ft, holdout: true}\n"
        "  - {name: tuned, axis: genre_ft, model: genre_ft, holdout: true, compare_to: base}\n"
    )
    experiments = load_experiments(path)
    assert [experiments.reference_of(v) for v in experiments.all()] == [None, "baseline", None, "base"]
    assert comparison_families(experiments, {"baseline": 1, "k2": 1, "base": 1, "tuned": 1}) == {
        "baseline": ["k2"], "base": ["tuned"]}


def test_a_retrieval_limit_below_a_metric_cut_off_is_refused(repo_params):
    from pydantic import ValidationError

    from animelab.params import EvaluateParams

    with pytest.raises(ValidationError, match="below the deepest metric cut-off @100"):
        EvaluateParams.model_validate(repo_params.evaluate.model_dump() | {"limit": 50})
