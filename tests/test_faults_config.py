"""Bad configuration fails at load time, in one line naming the file, the entry and the key to fix."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from animelab.errors import LabError
from animelab.evaluation.experiments import AXES, load_experiments
from animelab.gold.predicates import load_curated
from animelab.params import RANX_METRICS, EvaluateParams, ParamsError, load_params
from tests.conftest import REPO

COMMITTED = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
GOOD_QUERY = "- {id: curated-good, text: good query, vectors: [title_vector], grade_2: {text_any: [ninja]}}\n"


@pytest.mark.parametrize(
    ("grades", "message"),
    [
        ("grade_2: {}", r"curated-bad\): grade_2: .*has no condition"),
        ("grade_2: {text_any: [], genres_any: []}", r"curated-bad\): grade_2: .*has no condition"),
        ('grade_2: {text_any: [""]}', r"curated-bad\): grade_2\.text_any\.0: .*empty phrase"),
        ('grade_2: {title_any: ["  "]}', r"curated-bad\): grade_2\.title_any\.0: .*empty phrase"),
        ('grade_2: {text_any: [ninja, "\\t"]}', r"curated-bad\): grade_2\.text_any\.1: .*empty phrase"),
        ("grade_2: {text_any: [ninja]}, grade_1: {}", r"curated-bad\): grade_1: .*has no condition"),
        ('grade_2: {text_any: [ninja]}, grade_1: {title_any: [""]}',
         r"curated-bad\): grade_1\.title_any\.0: .*empty phrase"),
    ],
)
def test_curated_predicates_that_would_grade_every_anime_are_refused(tmp_path, grades, message):
    path = tmp_path / "curated.yaml"
    path.write_text(GOOD_QUERY + "- {id: curated-bad, text: bad query, vectors: [title_vector], " + grades + "}\n")
    with pytest.raises(LabError, match=re.escape(str(path)) + r": query #2 \(" + message) as error:
        load_curated(path)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("loader", "text", "line"),
    [
        (load_curated, GOOD_QUERY + "- id: curated-x\n  text: [unclosed\n  vectors: [title_vector]\n", 4),
        (load_curated, GOOD_QUERY + "- id: curated-x\n\ttext: tab\n", 3),
        (load_experiments, "search_defaults: {exact: true}\nbaseline: {class: deployable}\nvariants:\n"
                           "  - {name: a, class: deployable, axis: hnsw\n  - {name: b}\n", 5),
        (load_experiments, "baseline:\n  search: {exact: true}\n variants: []\n", 3),
        (load_params, "seed: 1\ntracking: {uri: x\n", 3),
    ],
)
def test_yaml_syntax_errors_name_the_file_and_line(tmp_path, loader, text, line):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(LabError, match=re.escape(f"{path}, line {line}, column ") + r"\d+: invalid YAML: ") as error:
        loader(path)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("variants", "message"),
    [
        ("  - {name: hnsw-x, class: deployable, axis: hnsw, index: {hnsw: {m: 500}}}\n",
         r"variant hnsw-x: index\.hnsw\.m: Input should be less than or equal to 128"),
        ("  - {name: k2, class: deployable, axis: fusion, search: {rrf_k: 2}}\n  - {axis: fusion, search: {rrf_k: 3}}\n",
         r"variant #2: name: Field required"),
        ("  - {name: Bad Name, class: deployable, axis: fusion}\n", r"variant Bad Name: name: String should match pattern"),
        ("  - {name: q, class: deployable, axis: quantization, index: {quantization: {kind: octal}}}\n",
         r"variant q: index\.quantization\.kind: Input should be"),
        ("  - {name: v, class: deployable, axis: colour}\n",
         r"variant v: axis: .*unknown axes \['colour'\]; known: \['baseline', 'hnsw', 'quantization'"),
        ("  - {name: v, class: deployable, axis: Fusion}\n", r"variant v: axis: .*unknown axes \['Fusion'\]"),
        ("  - {axis: colour}\n", r"variant #1: .*axis: .*unknown axes \['colour'\]"),
    ],
)
def test_invalid_variants_name_the_variant_and_field(tmp_path, variants, message):
    path = tmp_path / "variants.yaml"
    path.write_text("search_defaults: {exact: true}\nbaseline: {class: deployable}\nvariants:\n" + variants)
    with pytest.raises(LabError, match=re.escape(str(path)) + ": " + message) as error:
        load_experiments(path)
    assert "\n" not in str(error.value)


def test_an_invalid_baseline_is_named(tmp_path):
    path = tmp_path / "variants.yaml"
    path.write_text("search_defaults: {exact: true, rrf_k: 0}\nbaseline: {class: deployable}\nvariants: []\n")
    with pytest.raises(LabError, match=r": baseline: search\.rrf_k: Input should be greater than or equal to 1"):
        load_experiments(path)


def test_the_known_axes_are_those_the_committed_variants_use():
    experiments = load_experiments(REPO / "experiments" / "variants.yaml")
    assert {variant.axis for variant in experiments.all()} == set(AXES)


def params_with(tmp_path: Path, section: str, key: str, value) -> Path:
    """The committed params.yaml with one key changed, written to ``tmp_path``."""
    raw = copy.deepcopy(COMMITTED)
    raw[section][key] = value
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


@pytest.mark.parametrize("metric", ["recal@100", "ndcg@0", "ndcg@-1", "ndcg@", "ndcg@ten", "precision@10.5", "rbp.95",
                                    "ndcg@10-l0", "ndcg@10-2", "NDCG@10", "ndcg @10", ""])
def test_unknown_metrics_are_refused_naming_the_key_and_the_valid_names(tmp_path, metric):
    committed = COMMITTED["evaluate"]["metrics"]
    path = params_with(tmp_path, "evaluate", "metrics", [*committed, metric])
    with pytest.raises(ParamsError, match=rf"evaluate\.metrics\.{len(committed)}: .*unknown metric "
                                          rf"{re.escape(repr(metric))}; known: \['precision', 'recall', .*optional @k"):
        load_params(path)


@pytest.mark.parametrize("metric", ["ndcg", "mrr", "map@1", "r-precision", "hit_rate@5", "hits@20", "f1@10", "bpref",
                                    "ndcg_burges@10", "dcg@3"])
def test_ranx_metrics_with_an_optional_cut_off_are_accepted(repo_params, metric):
    metrics = [*repo_params.evaluate.metrics, metric]
    evaluate = EvaluateParams.model_validate(repo_params.evaluate.model_dump() | {"metrics": metrics})
    assert evaluate.metrics[-1] == metric


def test_every_accepted_metric_name_is_one_ranx_computes():
    from ranx.metrics import metric_switch

    for name in RANX_METRICS:
        assert callable(metric_switch(name)), name


@pytest.mark.parametrize("cap", [-5, 0])
def test_query_caps_below_one_are_refused_naming_the_key(tmp_path, cap):
    path = params_with(tmp_path, "gold", "max_queries", COMMITTED["gold"]["max_queries"] | {"facet": cap})
    with pytest.raises(ParamsError, match=r"gold\.max_queries\.facet: Input should be greater than or equal to 1"):
        load_params(path)
