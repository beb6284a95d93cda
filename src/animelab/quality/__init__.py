"""Embedding quality: drift between embedding sets, calibration of the drift tests, semantic coherence, pictures.

``drift`` compares two sets of vectors of one space, ``calibration`` checks that the drift test detects a known
injected shift and stays quiet on a random split, ``coherence`` measures whether neighbours in a vector space share
genres, franchises, studios and release order, ``space`` draws UMAP projections, ``tracking`` logs the numbers to
MLflow and reads their trend back. The statistics are pure functions over numpy arrays, so tests can feed them
synthetic data with known answers; the ``*_report`` functions adapt the corpus and embeddings to them.
"""
