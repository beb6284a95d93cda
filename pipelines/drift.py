"""DVC stage `drift`: drift between embedding sets, calibration of the drift test, coherence, UMAP pictures, MLflow."""

from __future__ import annotations

import logging
import time

from animelab.corpus.readers import read_corpus
from animelab.embeddings import load_manifest, load_vector
from animelab.errors import LabError
from animelab.stages import run_stage, stage_args
from animelab.io import write_json, write_text
from animelab.params import load_params
from animelab.quality import coherence, drift
from animelab.quality.calibration import calibrate
from animelab.quality.space import project_vector, space_html
from animelab.tracking import numeric_metrics
from animelab.quality.tracking import log_drift_run, trend


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, argv, "params", "corpus", "embeddings", "reports",
                      embeddings="the embeddings calibrated, checked for coherence and drawn (pairs name their own)")

    params = load_params(args.params)
    settings = params.drift
    entries = read_corpus(args.corpus)
    manifest = load_manifest(args.embeddings)
    embeddings = {name: load_vector(args.embeddings, name) for name in manifest["vectors"]
                  if (args.embeddings / f"{name}.npz").exists()}
    for key, name in [("drift.calibration.vector", settings.calibration.vector)] + [
            ("drift.space.vectors", name) for name in settings.space.vectors]:
        if name not in embeddings:
            raise LabError(f"{key}: {name} has no embeddings in {args.embeddings}")
    seconds: dict[str, float] = {}

    def timed(part: str, compute):
        start = time.perf_counter()
        result = compute()
        seconds[part] = round(time.perf_counter() - start, 1)
        logging.info("%s: %.1f s", part, seconds[part])
        return result

    pairs = timed("pairs", lambda: drift.compare_pairs(settings, {e.id: e.year for e in entries}, params.seed))
    calibration = timed("calibration", lambda: calibrate(embeddings[settings.calibration.vector].dense, settings,
                                                         drift.derived_rng(params.seed, "calibration")))
    images = {name: stats.get("images_found", 0) for name, stats in manifest["vectors"].items()}
    report = timed("coherence", lambda: coherence.coherence_report(embeddings, images, entries, settings.coherence,
                                                                   params.seed))
    projections = timed("umap", lambda: [project_vector(embeddings[name], settings.space, params.seed)
                                         for name in settings.space.vectors])
    write_text(args.reports / "embedding_space.html", space_html(projections, entries, settings.space))

    drift_metrics = {"pairs": drift.headline(pairs),
                     "calibration": {rate: calibration[rate] for rate in ("detection_rate", "false_alarm_rate")}}
    coherence_metrics = coherence.headline(report)
    metrics = numeric_metrics({"drift": drift_metrics, "coherence": coherence_metrics})
    bands = {f"band.{pair}.{vector}": result["band"] for pair, vectors in pairs.items()
             for vector, result in vectors.items() if "band" in result}
    run_id = log_drift_run(params.tracking, metrics, bands,
                           {"drift": settings.model_dump(mode="json"), "seed": params.seed})
    history = trend(params.tracking, sorted(metrics), settings.trend_windows)

    write_json(args.reports / "drift.json", {
        "pairs": {pair.name: {"a": pair.a.model_dump(mode="json"), "b": pair.b.model_dump(mode="json"),
                              "vectors": pairs[pair.name]} for pair in settings.pairs},
        "max_samples_per_side": settings.max_samples, "calibration": calibration,
        "mlflow_run": run_id, "trend": history, "seconds": seconds,
    })
    write_json(args.reports / "coherence.json", report)
    write_json(args.reports / "metrics" / "drift.json", drift_metrics)
    write_json(args.reports / "metrics" / "coherence.json", coherence_metrics)
    logging.info("drift: %s; MLflow run %s", {pair: {vector: "skipped" if "skipped" in result
                                                     else result.get("band", "spaces compared")
                                                     for vector, result in vectors.items()}
                                              for pair, vectors in pairs.items()}, run_id)


if __name__ == "__main__":
    run_stage(main)
