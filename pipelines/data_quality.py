"""DVC stage `data_quality`: completeness, consistency rules, cross-source links and stratified samples
-> metrics, HTML report, candidate pairs to label, MLflow (with regression alerts)."""

from __future__ import annotations

import logging

from animelab.corpus.ingest import ingest
from animelab.corpus.readers import read_corpus
from animelab.dataquality.completeness import completeness_report
from animelab.dataquality.consistency import check_rules
from animelab.dataquality.links import link_report
from animelab.dataquality.report import data_quality_html
from animelab.dataquality.sampling import sampling_report
from animelab.dataquality.tracking import headline_metrics, log_data_quality
from animelab.stages import run_stage, stage_args
from animelab.io import write_csv, write_json, write_text
from animelab.params import load_params

SOURCES = (("enriched", "enriched"), ("mal_seasons", "jikan"), ("bangumi", "bangumi"))


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, argv, "params", "corpus", "metrics", "report", "candidates",
                      candidates="fuzzy MAL-bangumi candidate pairs drawn for labelling (csv)")

    params = load_params(args.params)
    settings = params.data_quality
    # Each source read alone: in the corpus an enriched record hides the season file's record of that anime.
    sources = {name: ingest([(name, kind, params.data.path(name))]).entries for name, kind in SOURCES}
    corpus = read_corpus(args.corpus)
    links, to_label = link_report(sources, settings.links, params.seed)
    report = {"completeness": completeness_report(sources, corpus, settings),
              "rules": check_rules(settings.rules, corpus, settings.examples),
              "links": links,
              "sampling": sampling_report(corpus, settings.sample_evaluation.fractions, settings.strata, params.seed)}
    run_id, alerts = log_data_quality(params.tracking, headline_metrics(report), settings.max_completeness_drop,
                                      {"data_quality": settings.model_dump(mode="json"), "seed": params.seed})
    write_json(args.metrics, report | {"regression_alerts": alerts})
    write_text(args.report, data_quality_html(report, alerts))
    write_csv(args.candidates, [{"bangumi_id": c.bangumi_id, "anime_id": c.anime_id,
                                 "similarity": round(c.similarity, 4), "same": ""} for c in to_label],
              ["bangumi_id", "anime_id", "similarity", "same"])
    for alert in alerts:
        logging.warning("regression: %s fell from %.3f to %.3f", alert["metric"], alert["before"], alert["now"])
    logging.info("data quality of %d anime: %d rule violations, %d MAL-bangumi links; MLflow run %s", len(corpus),
                 sum(rule["violations"] for rule in report["rules"].values()), links["mal_bangumi"]["linked"], run_id)


if __name__ == "__main__":
    run_stage(main)
