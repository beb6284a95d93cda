"""Evaluation and experimentation lab for multi-vector anime semantic search.

Data flow: corpus (ingest) -> fields (the 14-vector mapper) -> embeddings (encoders) -> index
-> search -> runs -> metrics -> tracking/reports. Stages live in ``pipelines/``; this package
holds what they call.
"""
