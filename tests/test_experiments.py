"""Variant definitions: the committed file, merging over the baseline, and errors that say what is wrong."""

from __future__ import annotations

import pytest

from animelab.errors import LabError
from animelab.evaluation.runner import comparison_families
from animelab.evaluation.experiments import IndexOverrides, SearchSettings, load_experiments
from tests.conftest import REPO


def test_committed_variants_cover_the_axes(repo_params):
    experiments = load_experiments(REPO / repo_params.evaluate.experiments)
    assert experiments.choose_on == "dev" and len(experiments.candidates) > 1
    assert all(c.row_class == "deployable" and c.search.exact for c in experiments.candidates)
    design = next(v for v in experiments.variants if v.name == "design-all-vectors")
    assert design.search.vectors == "all" and design.search.exact
    axes = {variant.axis for variant in experiments.variants}
    assert {"hnsw", "quantization", "vectors", "fusion", "model"} <= axes
    # ANN is measured on the configuration a team would ship: every HNSW and quantization row.
    assert all(v.on_baseline and not v.search.exact for v in experiments.variants if v.axis in ("hnsw", "quantization"))
    assert {v.row_class for v in experiments.variants} == {"deployable", "oracle", "metadata"}


def test_on_baseline_rows_take_the_chosen_candidates_search(tmp_path):
    path = tmp_path / "variants.yaml"
    path.write_text(
        "search_defaults: {exact: true}\n"
        "baseline:\n  choose_on: dev\n  candidates:\n"
        "    - {name: a, class: deployable, search: {vectors: covered}}\n"
        "    - {name: b, class: deployable, search: {vectors: [title_vector], sparse: [bm25], rrf_k: 10}}\n"
        "variants:\n"
        "  - {name: ann, class: deployable, axis: hnsw, on_baseline: true, search: {exact: false, hnsw_ef: 32}}\n"
        "  - {name: plain, class: deployable, axis: fusion, search: {rrf_k: 2}}\n"
    )
    experiments = load_experiments(path)
    chosen = experiments.with_baseline(experiments.candidates[1])
    baseline, ann, plain = chosen.all()
    assert baseline.name == "baseline" and baseline.description.startswith("b (chosen on dev)")
    assert ann.search.sparse == ["bm25"] and ann.search.rrf_k == 10 and ann.search.hnsw_ef == 32 and not ann.search.exact
    assert plain.search.sparse == [] and plain.search.vectors == "all" and plain.search.exact
    assert chosen.reference_of(ann) == "baseline"


@pytest.mark.parametrize(
    ("baseline", "message"),
    [
        ("{choose_on: dev, candidates: [{name: h, class: oracle, search: {vectors: hint}}]}", "not deployable"),
        ("{choose_on: test, candidates: [{name: a, class: deployable}]}", "choose_on must be train or dev"),
        ("{choose_on: dev, candidates: []}", "at least one"),
    ],
)
def test_a_baseline_choice_is_among_deployable_rows_on_a_tuning_split(tmp_path, baseline, message):
    assert_refused(tmp_path, f"baseline: {baseline}\nvariants: []\n", message)


def assert_refused(tmp_path, text: str, message: str) -> None:
    path = tmp_path / "variants.yaml"
    path.write_text(text)
    with pytest.raises(LabError, match=message):
        load_experiments(path)


def test_a_variant_changes_only_what_it_names(tmp_path):
    path = tmp_path / "variants.yaml"
    path.write_text(
        "search_defaults: {vectors: all, fusion: rrf, rrf_k: 60, exact: true, prefetch_limit: 50}\nbaseline: {class: deployable}\n"
        "variants:\n"
        "  - {name: k2, class: deployable, axis: fusion, search: {rrf_k: 2}}\n"
        "  - {name: scalar, class: deployable, axis: quantization, index: {quantization: {kind: scalar, quantile: 0.99}},\n"
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
        ("{name: w, class: deployable, axis: fusion, search: {fusion: dbsf, weights: priority}}", "weights apply to RRF fusion only"),
        ("{name: v, class: deployable, axis: vectors, search: {vectors: [plot_vector]}}", "unknown text vectors"),
        ("{name: q, class: deployable, axis: quantization, index: {quantization: {kind: binary, quantile: 0.9}}}",
         "quantile applies to scalar quantization only"),
        ("{name: x, class: deployable, axis: fusion, search: {rrf_k: 2}, colour: red}", "Extra inputs are not permitted"),
        ("{name: baseline, class: deployable, axis: fusion}", "duplicate variant names"),
        ("{name: t, class: deployable, axis: genre_ft, model: genre_ft, holdout: true, compare_to: baseline}", "must agree on holdout"),
        ("{name: t, class: deployable, axis: genre_ft, model: genre_ft, compare_to: nothing}", "compare_to must name a variant"),
        # A row's class must say what it reads.
        ("{name: h, class: deployable, axis: vectors, search: {vectors: hint}}", "must be 'oracle'.*vectors: hint"),
        ("{name: f, class: deployable, axis: sparse, search: {dense: false, sparse: [feature_static]}}",
         "must be 'metadata'.*feature_static"),
        ("{name: o, class: oracle, axis: fusion, search: {rrf_k: 2}}", "must be 'deployable'"),
        ("{name: n, axis: fusion}", "class: Field required"),
        # Another set's vector is named <set>:<text vector>.
        ("{name: e, class: deployable, axis: model, search: {extra_vectors: [title_vector]}}",
         "extra vectors \\['title_vector'\\] are not <embedding set>:<text vector> names"),
        ("{name: e, class: deployable, axis: model, search: {extra_vectors: ['use:plot_vector']}}",
         "are not <embedding set>:<text vector> names"),
        ("{name: e, class: deployable, axis: model, search: {extra_vectors: ['use:title_vector'], "
         "extra_score_threshold: {'use:genre_vector': 0.4}}}",
         "extra_score_threshold names \\['use:genre_vector'\\], which extra_vectors does not list"),
    ],
)
def test_invalid_variants_are_refused_with_the_reason(tmp_path, variant, message):
    assert_refused(tmp_path, "search_defaults: {exact: true}\nbaseline: {class: deployable}\nvariants:\n  - " + variant
                   + "\n", message)


def test_a_hybrid_names_an_embedding_set_that_embeds_its_vector(tmp_path, repo_params):
    from animelab.evaluation.runner import check_variants

    path = tmp_path / "variants.yaml"
    for vector, message in (("bge:title_vector", "embed.sets has no set 'bge'"),
                            ("use:review_vector", "embed.sets.use.vectors does not embed")):
        path.write_text("baseline: {class: deployable}\nvariants:\n  - {name: h, class: deployable, axis: model, "
                        f"search: {{extra_vectors: ['{vector}']}}}}\n")
        with pytest.raises(LabError, match=f"variant h searches {vector}, .*{message}"):
            check_variants(repo_params, load_experiments(path))
    path.write_text("baseline: {class: deployable}\nvariants:\n  - {name: h, class: deployable, axis: model, "
                    "search: {extra_vectors: ['use:title_vector']}}\n  - {name: u, class: deployable, axis: model, "
                    "model: use-multilingual}\n")
    experiments = load_experiments(path)
    sources = check_variants(repo_params, experiments)
    (extra,) = sources["h"].extra
    assert (extra.name, extra.model.kind, extra.embeddings) == ("use:title_vector", "use-multilingual",
                                                                repo_params.embed.sets["use"].dir)
    assert sources["u"].embeddings == repo_params.embed.sets["use"].dir and not sources["u"].extra
    # The hybrid's collection indexes the other set's vector beside every vector of index.vectors.
    vectors = experiments.variants[0].index_params(repo_params.index).vectors
    assert vectors == [*repo_params.index.vectors, "use:title_vector"]


def test_held_out_variants_form_their_own_comparison_family(tmp_path):
    path = tmp_path / "variants.yaml"
    path.write_text(
        "search_defaults: {exact: true}\nbaseline: {class: deployable}\n"
        "variants:\n"
        "  - {name: k2, class: deployable, axis: fusion, search: {rrf_k: 2}}\n"
        "  - {name: base, class: deployable, axis: genre_ft, holdout: true}\n"
        "  - {name: tuned, class: deployable, axis: genre_ft, model: genre_ft, holdout: true, compare_to: base}\n"
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


def test_each_extra_list_takes_its_own_score_threshold():
    from animelab.evaluation.requests import search_request

    dense = {name: [1.0, 0.0] for name in ("title_vector", "use:title_vector", "use:genre_vector")}
    per_list = SearchSettings(score_threshold=0.6, extra_vectors=["use:title_vector", "use:genre_vector"],
                              extra_score_threshold={"use:genre_vector": 0.45})
    shared = per_list.model_copy(update={"extra_score_threshold": 0.3})
    for settings, expected in ((per_list, [0.6, None, 0.45]), (shared, [0.6, 0.3, 0.3])):
        request = search_request(settings, dense, {}, limit=10)
        assert [q.score_threshold for q in request.queries] == expected


def test_a_bge_m3_row_runs_float32_even_when_the_default_model_autocasts(repo_params, tiny_bge_m3_dir):
    """BGE-M3's lexical head cannot take bfloat16: the default model's forced autocast must not carry over."""
    from animelab.evaluation.models import model_source

    embed = repo_params.embed.model_copy(update={"text_model": repo_params.embed.text_model.model_copy(
        update={"bf16_autocast": True})})
    evaluate = repo_params.evaluate.model_copy(update={"model_paths": {"bge-m3": tiny_bge_m3_dir}})
    params = repo_params.model_copy(update={"embed": embed, "evaluate": evaluate})
    row = next(v for v in load_experiments(REPO / "experiments/variants.yaml").variants if v.name == "model-bge-m3")
    source = model_source(params, row)
    assert source.model.kind == "bge-m3" and source.model.bf16_autocast is False and not source.model.autocast


def test_a_row_indexes_graphs_only_where_it_walks_them(tmp_path, repo_params):
    path = tmp_path / "variants.yaml"
    path.write_text(
        "search_defaults: {exact: true}\nbaseline: {class: deployable}\nvariants:\n"
        "  - {name: ann, class: deployable, axis: hnsw, index: {hnsw: {m: 8}},\n"
        "     search: {exact: false, vectors: [genre_vector, title_vector], extra_vectors: ['use:title_vector']}}\n"
        "  - {name: ann-all, class: deployable, axis: hnsw, search: {exact: false}}\n")
    experiments = load_experiments(path)
    exact, ann, ann_all = (variant.index_params(repo_params.index) for variant in experiments.all())
    # An exact row scans: every vector, no graph.
    assert exact.vectors == repo_params.index.vectors
    assert {settings.hnsw.m for settings in exact.priorities.values()} == {0}
    # An approximate row: graphs (with its overrides) for the vectors it searches, in index.vectors' order.
    assert ann.vectors == ["title_vector", "genre_vector", "use:title_vector"]
    assert {settings.hnsw.m for settings in ann.priorities.values()} == {8}
    assert ann_all.vectors == repo_params.index.vectors and ann_all.priorities == repo_params.index.priorities
