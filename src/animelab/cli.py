"""Command line for people: ``python -m animelab <command> --help``."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from pydantic import ValidationError

from animelab.corpus.readers import read_corpus
from animelab.errors import LabError, run_for_user
from animelab.fields import TEXT_VECTOR_NAMES, VECTORS, vector_inputs
from animelab.index.query import RRF_K, FilterSpec
from animelab.params import load_params

FILTER_ALIASES = {"genre": "genres", "theme": "themes", "demographic": "demographics", "studio": "studios",
                  "producer": "producers"}
_FILTER = re.compile(r"^(?P<key>[a-z_]+)(?P<mode>:all)?(?P<op>>=|<=|=)(?P<value>.+)$")


def show_vectors(_: argparse.Namespace) -> None:
    print(f"{'vector':24} {'modality':8} {'priority':8} {'long text':10} source fields")
    for spec in VECTORS:
        long_text = spec.long_text if spec.modality == "text" else "-"
        print(f"{spec.name:24} {spec.modality:8} {spec.priority:8} {long_text:10} {', '.join(spec.sources)}")


def show_fields(args: argparse.Namespace) -> None:
    entries = {entry.id: entry for entry in read_corpus(args.corpus)}
    if args.anime_id not in entries:
        raise LabError(f"{args.anime_id!r} is not in {args.corpus} (ids look like 'mal:1535')")
    entry = entries[args.anime_id]
    for spec in VECTORS:
        inputs = vector_inputs(entry, spec)
        print(f"== {spec.name} ({'absent' if not inputs else f'{len(inputs)} segments'})")
        for segment in inputs:
            print(f"   {segment}")


def parse_filters(expressions: list[str]) -> FilterSpec | None:
    """``genre=Sports,Drama`` (any of), ``genre:all=Action,Comedy`` (all of), ``year>=2010``, ``score<=8``."""
    values: dict[str, object] = {}
    written: dict[str, str] = {}  # FilterSpec field -> the expression that set it, for error messages
    for expression in expressions:
        match = _FILTER.match(expression.strip())
        if not match:
            raise LabError(f"--filter {expression!r}: expected key=value, key:all=v1,v2, key>=n or key<=n")
        key = FILTER_ALIASES.get(match["key"], match["key"])
        op, value = match["op"], match["value"]
        if op == "=":
            field = f"{key}_{'all' if match['mode'] else 'any'}"
            values[field] = [*values.get(field, []), *[v.strip() for v in value.split(",") if v.strip()]]
        else:
            field = f"{key}_{'gte' if op == '>=' else 'lte'}"
            values[field] = value
        written[field] = expression
    if not values:
        return None
    try:
        return FilterSpec.model_validate(values)
    except ValidationError as error:
        detail = error.errors()[0]
        field = str(detail["loc"][0])
        if detail["type"] == "extra_forbidden":
            plural = {name: alias for alias, name in FILTER_ALIASES.items()}
            keys = sorted({plural.get(name.rsplit("_", 1)[0], name.rsplit("_", 1)[0]) for name in FilterSpec.model_fields}
                          - {"anime_id"})
            raise LabError(f"--filter {written[field]!r}: unknown key; known: {keys}") from error
        raise LabError(f"--filter {written[field]!r}: {detail['msg']}") from error


def vector_names(names: str, indexed: list[str]) -> list[str]:
    """``title,genre`` -> ``["title_vector", "genre_vector"]``; ``all`` -> every indexed text vector."""
    if names == "all":
        return [name for name in indexed if name in TEXT_VECTOR_NAMES]
    result = [name if name.endswith("_vector") else f"{name}_vector" for name in names.split(",") if name]
    unknown = sorted(set(result) - set(TEXT_VECTOR_NAMES))
    if unknown:
        raise LabError(f"--vectors: unknown text vectors {unknown}; known: {list(TEXT_VECTOR_NAMES)}")
    missing = sorted(set(result) - set(indexed))
    if missing:
        raise LabError(f"--vectors: {missing} are not in the index (index.vectors)")
    return result


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive whole number")
    return value


def weight_list(text: str) -> tuple[float, ...]:
    try:
        weights = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None
    if not all(0 < weight < float("inf") for weight in weights):
        raise argparse.ArgumentTypeError(f"{text!r}: every weight must be a positive finite number")
    return weights


def search(args: argparse.Namespace) -> None:
    from animelab.encoders.registry import model_name, text_encoder
    from animelab.evaluation.experiments import SearchSettings
    from animelab.evaluation.requests import query_vectors_for, search_request
    from animelab.index.build import indexed_text_model, open_index

    params = load_params(args.params)
    if args.vectors == "routed":
        from animelab.routing.router import load_router, route_vectors

        (label,), _ = load_router(args.router).predict(
            [args.query], text_encoder(params.route_model()).encode_queries([args.query]).dense)
        vectors = query_vectors_for(SearchSettings(vectors="routed"), [], vector_names("all", params.index.vectors),
                                    routed=route_vectors(label))
        print(f"routed to: {', '.join(vectors)}")
    else:
        vectors = vector_names(args.vectors, params.index.vectors)
    try:
        settings = SearchSettings(vectors=vectors, fusion=args.fusion, rrf_k=args.rrf_k,
                                  prefetch_limit=args.prefetch_limit, hnsw_ef=args.hnsw_ef, exact=args.exact,
                                  quantization_ignore=args.ignore_quantization, rescore=args.rescore,
                                  oversampling=args.oversampling)
    except ValueError as error:  # pydantic's ValidationError is one
        raise LabError(f"search options: {error.errors()[0]['msg']}") from error
    weights = args.weights
    if weights is not None and len(weights) != len(vectors):
        raise LabError(f"--weights: {len(weights)} weights for {len(vectors)} vectors {vectors}")
    filters = parse_filters(args.filter)
    built_with, configured = indexed_text_model(args.index), model_name(params.embed.text_model)
    if built_with != configured:
        raise LabError(f"{args.index} was built with {built_with}, but embed.text_model is {configured}: "
                       "queries would be encoded by another model (rebuild the index: dvc repro index)")
    index = open_index(params.index, args.index)
    try:
        # One encoding serves every named vector: they share the model (and its query instruction).
        query = text_encoder(params.embed.text_model).encode_queries([args.query]).dense[0].tolist()
        request = search_request(settings, {name: query for name in vectors}, {}, args.limit, filters, weights,
                                 with_payload=("anime_id", "title"))
        hits = index.search(request)
    finally:
        index.close()
    for rank, hit in enumerate(hits, start=1):
        print(f"{rank:>3}. {hit.score:.4f}  {hit.anime_id:<14} {hit.payload.get('title', '')}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m animelab", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    vectors = commands.add_parser("vectors", help="the 14 named vectors and their source fields")
    vectors.set_defaults(handler=show_vectors)
    fields = commands.add_parser("fields", help="the text each vector embeds for one anime")
    fields.add_argument("anime_id", help="corpus id, e.g. mal:1535")
    fields.add_argument("--corpus", type=Path, default=Path("data/corpus/anime.jsonl"))
    fields.set_defaults(handler=show_fields)

    root = commands.add_parser("data-root", help="the absolute data.root, for experiments queued outside the "
                                                 "workspace (dvc exp run --queue -S data.root=...)")
    root.add_argument("--params", type=Path, default=Path("params.yaml"))
    root.set_defaults(handler=lambda args: print(load_params(args.params).data.root.resolve()))

    query = commands.add_parser("search", help="search the built index with a text query",
                                description="Search the index the `index` stage built. Several --vectors are "
                                            "prefetched and fused (RRF or DBSF).")
    query.add_argument("query", help="free text, e.g. 'high school volleyball team'")
    query.add_argument("--vectors", default="title",
                       help="comma-separated text vectors (title,genre,...), 'all', or 'routed' (the route stage's "
                            "router picks them from the query text)")
    query.add_argument("--router", type=Path, default=Path("data/routing/router.joblib"),
                       help="the router --vectors routed loads")
    query.add_argument("--fusion", choices=["rrf", "dbsf"], default="rrf")
    query.add_argument("--rrf-k", type=positive_int, default=RRF_K)
    query.add_argument("--weights", type=weight_list, help="comma-separated positive weights, one per vector (weighted RRF)")
    query.add_argument("--filter", action="append", default=[],
                       help="genre=Sports,Drama | genre:all=Action,Comedy | studio=Madhouse | type=TV | "
                            "year>=2010 | score>=8 (repeatable; genre/theme/demographic/studio/producer/type/status/season/"
                            "year/score)")
    query.add_argument("--limit", type=positive_int, default=10)
    query.add_argument("--prefetch-limit", type=positive_int, default=100, help="candidates per vector before fusion")
    query.add_argument("--hnsw-ef", type=positive_int)
    query.add_argument("--exact", action="store_true", help="exact scan instead of the HNSW graph")
    query.add_argument("--ignore-quantization", action="store_true")
    query.add_argument("--rescore", action=argparse.BooleanOptionalAction, default=None)
    query.add_argument("--oversampling", type=float)
    query.add_argument("--params", type=Path, default=Path("params.yaml"))
    query.add_argument("--index", type=Path, default=Path("data/index"))
    query.set_defaults(handler=search)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    run_for_user(lambda: args.handler(args))
