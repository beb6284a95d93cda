"""Data quality of the corpus before anything is embedded: completeness, consistency, cross-source links,
stratified samples. The `data_quality` stage reports it; `evaluate_sample` scores variants on the samples."""
