"""The query router on real query texts and the real text encoder; routed requests; the routed row's class."""

from __future__ import annotations

import numpy as np
import pytest

from animelab.evaluation.experiments import SearchSettings, Variant
from animelab.evaluation.requests import query_vectors_for
from animelab.gold.splits import GoldQuery
from animelab.params import RouteParams
from animelab.routing.router import accuracy, choose_router, confusions, route_label, SplitData

STUDIOS = ["Madhouse", "Sunrise", "Bones", "Kyoto Animation", "Production I.G", "Shaft", "Trigger", "Ufotable",
           "MAPPA", "Wit Studio", "Toei Animation", "A-1 Pictures"]
KINDS = ["romance", "horror", "sports", "cooking", "mecha", "music", "mystery", "comedy", "fantasy", "space opera",
         "idol", "school"]
TITLES = ["Naruto", "Bleach", "Monster", "Mushishi", "Clannad", "Toradora", "Haikyuu", "Gintama", "Hyouka",
          "Shirobako", "Aria", "Kaiji"]


def queries_for(split: str, offset: int) -> list[GoldQuery]:
    """Three needs a router must tell apart, each phrased the way its gold category phrases it."""
    made = []
    for i in range(offset, offset + 4):
        made += [GoldQuery(f"s{split}{i}", f"anime animated by {STUDIOS[i]}", "studio", f"s{i}", {}, ["staff_vector"],
                           split=split),
                 GoldQuery(f"f{split}{i}", f"a {KINDS[i]} series for teenagers", "facet", f"f{i}", {}, ["genre_vector"],
                           split=split),
                 GoldQuery(f"k{split}{i}", f"anime like {TITLES[i]}", "similar", f"k{i}", {},
                           ["title_vector", "genre_vector", "related_vector"], split=split)]
    return made


ROUTE = RouteParams(embedding="default", feature_sets=[["dense"], ["lexical"], ["dense", "lexical"]],
                    c_values=[1.0, 10.0], class_weights=["none", "balanced"], char_ngrams=(2, 4), choose_on="dev")


def test_the_router_tells_needs_apart_on_names_it_never_saw(minilm):
    parts = {name: queries_for(name, offset) for name, offset in (("train", 0), ("dev", 4), ("test", 8))}
    data = {name: SplitData(queries, minilm.encode_queries([q.text for q in queries]).dense)
            for name, queries in parts.items()}
    router, chosen, trials = choose_router(data["train"], data["dev"], ROUTE, seed=3)
    assert len(trials) == 3 * 2 * 2
    assert chosen in trials and max(t["dev_macro_accuracy"] for t in trials) == chosen["dev_macro_accuracy"] == round(accuracy(
        parts["dev"], router.predict(data["dev"].texts, data["dev"].dense)[0])["macro"], 4)
    predicted, probability = router.predict(data["test"].texts, data["test"].dense)
    scored = accuracy(parts["test"], predicted)
    assert scored["macro"] >= 0.9 and np.all((probability > 0) & (probability <= 1))
    matrices = confusions(parts["test"], predicted)
    assert set(matrices) == {"studio", "facet", "similar"}
    for category, confusion in matrices.items():
        matrix = np.array(confusion["matrix"])
        assert matrix.sum() == scored["queries"][category]
        hint = confusion["labels"].index(route_label(next(q for q in parts["test"] if q.category == category).vectors))
        assert matrix[hint, hint] / matrix.sum() == pytest.approx(scored["per_category"][category])


def test_route_labels_ignore_order_and_routed_requests_search_the_routed_vectors():
    assert route_label(["title_vector", "genre_vector"]) == route_label(["genre_vector", "title_vector", "genre_vector"])
    routed = SearchSettings(vectors="routed")
    indexed = ["title_vector", "genre_vector", "staff_vector"]
    assert query_vectors_for(routed, ["genre_vector"], indexed, routed=["staff_vector"]) == ["staff_vector"]
    # A routed vector the index lacks falls back to every indexed vector, as a hint does.
    assert query_vectors_for(routed, ["genre_vector"], indexed, routed=["episode_vector"]) == indexed
    assert query_vectors_for(SearchSettings(vectors=["genre_vector"]), ["title_vector"], indexed) == ["genre_vector"]
    with pytest.raises(ValueError, match="needs the router's routes"):
        query_vectors_for(routed, ["genre_vector"], indexed)
    assert Variant(name="r", axis="vectors", **{"class": "deployable"}, search=routed).row_class == "deployable"
    with pytest.raises(ValueError, match="must be 'deployable'"):
        Variant(name="r", axis="vectors", **{"class": "oracle"}, search=routed)
