"""The command line's own parsing: filters and vector names."""

from __future__ import annotations

import pytest

from animelab.cli import parse_filters, vector_names
from animelab.errors import LabError
from animelab.index.query import FilterSpec
from tests.conftest import REPO


def test_filters_parse_into_the_search_api():
    spec = parse_filters(["genre=Sports,Drama", "genre:all=Action", "studio=Madhouse", "year>=2010", "score<=8.5",
                          "season=fall"])
    assert spec == FilterSpec(genres_any=["Sports", "Drama"], genres_all=["Action"], studios_any=["Madhouse"],
                              year_gte=2010, score_lte=8.5, season_any=["fall"])
    assert parse_filters([]) is None


@pytest.mark.parametrize(("expression", "message"), [
    ("genre~Sports", "expected key=value"),
    ("colour=red", r"--filter 'colour=red': unknown key; known: \[.*'genre'.*'year'\]"),
    # The message names what the user wrote, not the search API's internal field (year_gte).
    ("year>=abc", r"--filter 'year>=abc': Input should be a valid integer"),
])
def test_bad_filters_say_what_is_wrong(expression, message):
    with pytest.raises(LabError, match=message):
        parse_filters([expression])


def test_vector_names_expand_and_check():
    indexed = ["title_vector", "genre_vector", "staff_vector"]
    assert vector_names("title,genre", indexed) == ["title_vector", "genre_vector"]
    assert vector_names("all", indexed) == indexed
    with pytest.raises(LabError, match="unknown text vectors"):
        vector_names("plot", indexed)
    with pytest.raises(LabError, match="not in the index"):
        vector_names("episode", indexed)


@pytest.mark.parametrize(("options", "message"), [(["--exact", "--hnsw-ef", "8"], "hnsw_ef has no effect"),
                                                  (["--weights", "3,2,1"], "3 weights for 2 vectors")])
def test_contradictory_search_options_are_refused_before_any_work(tmp_path, options, message):
    from animelab.cli import build_parser, search

    args = build_parser().parse_args(["search", "robots", "--vectors", "title,genre", "--params",
                                      str(REPO / "params.yaml"), "--index", str(tmp_path / "none"), *options])
    with pytest.raises(LabError, match=message):
        search(args)
