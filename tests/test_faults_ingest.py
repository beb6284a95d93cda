"""Fault injection for ingest: each malformed input quarantines its own record with a reason, or fails the stage
with a one-line LabError; a fuzzed season file never lets an exception escape."""

from __future__ import annotations

import base64
import codecs
import importlib.util
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from animelab.corpus.ingest import NothingIngested, ingest
from animelab.corpus.readers import (
    FORMATS,
    SourceError,
    lower_or_none,
    normalise_status,
    text_or_none,
    upper_or_none,
)
from animelab.corpus.schema import AnimeEntry
from animelab.io import read_jsonl, write_jsonl
from tests.conftest import REPO

SOURCE_NAMES = {"jikan": "mal_seasons", "enriched": "enriched", "bangumi": "bangumi"}
FILE_NAMES = {"jikan": "faults.jsonl", "enriched": "faults.json", "bangumi": "faults.jsonl"}


@dataclass(frozen=True)
class Samples:
    """Three real records of each format: raw (bytes for JSON lines, dicts for the enriched document) and parsed."""

    raw: dict[str, list[Any]]
    parsed: dict[str, list[Any]]


@pytest.fixture(scope="module")
def samples(repo_params) -> Samples:
    jsonl = {
        "jikan": repo_params.data.path("mal_seasons").read_bytes().split(b"\n")[:3],
        "bangumi": repo_params.data.path("bangumi").read_bytes().split(b"\n")[:3],
    }
    raw = jsonl | {"enriched": json.loads(repo_params.data.path("enriched").read_text(encoding="utf-8"))["data"][:3]}
    parsed = {fmt: [FORMATS[fmt].parse(r.decode() if isinstance(r, bytes) else r) for r in records]
              for fmt, records in raw.items()}
    return Samples(raw, parsed)


def lines(*records: bytes, end: bytes = b"\n") -> bytes:
    return b"".join(record + end for record in records)


def document(*records: dict[str, Any]) -> bytes:
    return json.dumps({"data": list(records)}).encode()


def edit(record: bytes, old: bytes, new: bytes) -> bytes:
    assert old in record
    return record.replace(old, new, 1)


def with_fields(record: bytes, **fields: Any) -> bytes:
    return json.dumps(json.loads(record) | fields).encode()


def mal_case(bad: Callable[[list[bytes]], bytes]) -> Callable[[Samples], bytes]:
    """Good record, the fault, good record, then a bad line whose location proves the numbering held."""
    return lambda s: lines(s.raw["jikan"][0], bad(s.raw["jikan"]), s.raw["jikan"][2], b"not json")


def enriched_case(**fields: Any) -> Callable[[Samples], bytes]:
    return lambda s: document(s.raw["enriched"][0], s.raw["enriched"][1] | fields, s.raw["enriched"][2])


TITLE = b'"title": "'
LAST_LINE_BAD = {":4": "invalid JSON: Expecting value"}

FAULTS = [
    pytest.param("jikan", mal_case(lambda r: edit(r[1], TITLE, TITLE + b"\xff")), (0, 2),
                 {":2": "invalid UTF-8: invalid start byte at byte "} | LAST_LINE_BAD, id="invalid-utf8-byte"),
    pytest.param("jikan", mal_case(lambda r: edit(r[1], TITLE, TITLE + b"\xe3\x81")), (0, 2),
                 {":2": "invalid UTF-8: invalid continuation byte at byte "} | LAST_LINE_BAD, id="cut-utf8-sequence"),
    pytest.param("jikan", mal_case(lambda r: edit(r[1], b', "', b',\r "')), (0, 1, 2),
                 LAST_LINE_BAD, id="bare-cr-between-tokens"),
    pytest.param("jikan", mal_case(lambda r: edit(r[1], TITLE, TITLE + b"\r")), (0, 2),
                 {":2": "invalid JSON: Invalid control character"} | LAST_LINE_BAD, id="bare-cr-in-a-string"),
    pytest.param("jikan", lambda s: lines(*s.raw["jikan"], b"not json", end=b"\r\n"), (0, 1, 2),
                 LAST_LINE_BAD, id="crlf-line-ends"),
    pytest.param("jikan", lambda s: codecs.BOM_UTF8 + lines(*s.raw["jikan"], b"not json"), (0, 1, 2),
                 LAST_LINE_BAD, id="utf8-bom"),
    pytest.param("jikan", mal_case(lambda r: edit(r[1], TITLE, TITLE + b"\x00")), (0, 2),
                 {":2": "invalid JSON: Invalid control character"} | LAST_LINE_BAD, id="nul-in-a-string"),
    pytest.param("jikan", mal_case(lambda r: edit(r[1], b', "', b', \x00"')), (0, 2),
                 {":2": "invalid JSON: Expecting property name"} | LAST_LINE_BAD, id="nul-between-tokens"),
    pytest.param("jikan", mal_case(lambda r: b"[1, 2, 3]"), (0, 2),
                 {":2": "ValueError: expected a JSON object, got list"} | LAST_LINE_BAD, id="non-object-json"),
    pytest.param("jikan", mal_case(lambda r: b"[" * 100_000), (0, 2),
                 {":2": "invalid JSON: nested too deeply"} | LAST_LINE_BAD, id="deep-nesting"),
    pytest.param("jikan", mal_case(lambda r: with_fields(r[1], season=3)), (0, 2),
                 {":2": "season: Input should be a valid string"} | LAST_LINE_BAD, id="jikan-season-int"),
    pytest.param("jikan", mal_case(lambda r: with_fields(r[1], score=10**400)), (0, 2),
                 {":2": "OverflowError: int too large to convert to float"} | LAST_LINE_BAD,
                 id="jikan-score-400-digits"),
    pytest.param("enriched", enriched_case(synopsis=12345), (0, 2),
                 {"#data[1]": "synopsis: expected a string, got int 12345"}, id="enriched-synopsis-int"),
    pytest.param("enriched", enriched_case(season=3), (0, 2),
                 {"#data[1]": "season: expected a string, got int 3"}, id="enriched-season-int"),
    pytest.param("enriched", enriched_case(status=["FINISHED"]), (0, 2),
                 {"#data[1]": "status: expected a string, got list ['FINISHED']"}, id="enriched-status-list"),
    pytest.param("enriched", enriched_case(type={"name": "TV"}), (0, 2),
                 {"#data[1]": "type: expected a string, got dict"}, id="enriched-type-dict"),
    pytest.param("enriched", enriched_case(characters=[{"name": "Ai", "description": 7}]), (0, 2),
                 {"#data[1]": "characters.0.description: expected a string, got int 7"},
                 id="enriched-character-description-int"),
    pytest.param("enriched", enriched_case(episode_details=[{"episode_number": 1, "title": ["x"]}]), (0, 2),
                 {"#data[1]": "episode_details.0.title: expected a string, got list ['x']"},
                 id="enriched-episode-title-list"),
    pytest.param("enriched", enriched_case(staff_data=["Madhouse"]), (0, 2),
                 {"#data[1]": "AttributeError: 'list' object has no attribute 'get'"}, id="enriched-staff-list"),
    pytest.param("enriched", lambda s: codecs.BOM_UTF8 + document(*s.raw["enriched"]), (0, 1, 2),
                 {}, id="enriched-utf8-bom"),
    pytest.param("bangumi", lambda s: lines(s.raw["bangumi"][0], with_fields(s.raw["bangumi"][1], synopsis=12345),
                                            s.raw["bangumi"][2]), (0, 2),
                 {":2": "synopsis: expected a string, got int 12345"}, id="bangumi-synopsis-int"),
]


@pytest.mark.parametrize(("fmt", "content", "ingested", "quarantined"), FAULTS)
def test_a_fault_quarantines_its_record_with_a_reason_and_keeps_the_rest(
    tmp_path, samples, fmt, content, ingested, quarantined
):
    path = tmp_path / FILE_NAMES[fmt]
    path.write_bytes(content(samples))
    result = ingest([(SOURCE_NAMES[fmt], fmt, path)])

    assert result.entries == [samples.parsed[fmt][index] for index in ingested]
    reasons = {q.location: q.reason for q in result.quarantined}
    assert set(reasons) == {path.name + where for where in quarantined}
    for where, prefix in quarantined.items():
        assert reasons[path.name + where].startswith(prefix), reasons[path.name + where]
    assert result.read == len(result.entries) + len(result.quarantined)


def test_an_undecodable_line_is_kept_byte_for_byte_in_the_quarantine(tmp_path, samples):
    good, bad = samples.raw["jikan"][0], edit(samples.raw["jikan"][1], TITLE, TITLE + b"\xff")
    path = tmp_path / "seasons.jsonl"
    path.write_bytes(lines(good, bad, b"not json"))
    result = ingest([("mal_seasons", "jikan", path)])
    write_jsonl(tmp_path / "quarantine.jsonl", [q.as_json() for q in result.quarantined])

    undecodable, not_json = read_jsonl(tmp_path / "quarantine.jsonl")
    position = bad.index(b"\xff") + 1
    assert undecodable["reason"] == f"invalid UTF-8: invalid start byte at byte {position}"
    assert undecodable["raw_encoding"] == "base64" and base64.b64decode(undecodable["raw"]) == bad
    assert not_json == {"source": "mal_seasons", "location": "seasons.jsonl:3",
                        "reason": "invalid JSON: Expecting value at column 1", "raw": "not json"}


def test_an_enriched_record_with_a_lone_surrogate_is_quarantined_and_written(tmp_path):
    # A JSON escape of half a surrogate pair parses into a str UTF-8 cannot encode.
    path = tmp_path / "enriched.json"
    path.write_text('{"data": [{"id": "x", "title": "T", "synopsis": 5, "note": "\\ud800"}]}', encoding="utf-8")
    result = ingest([("enriched", "enriched", path)])
    write_jsonl(tmp_path / "quarantine.jsonl", [q.as_json() for q in result.quarantined])
    row, = read_jsonl(tmp_path / "quarantine.jsonl")
    assert row["raw_encoding"] == "json" and json.loads(row["raw"])["note"] == "\ud800"


@pytest.mark.parametrize(
    ("helper", "value", "expected"),
    [
        (text_or_none, None, None), (text_or_none, "", None), (text_or_none, "  ", None), (text_or_none, " a ", "a"),
        (upper_or_none, None, None), (upper_or_none, "", None), (upper_or_none, "  ", ""),  # blank stays "" as before
        (upper_or_none, " tv ", "TV"),
        (lower_or_none, None, None), (lower_or_none, "", None), (lower_or_none, "FALL ", "fall "),
        (normalise_status, None, None), (normalise_status, "", ""),
        (normalise_status, " Finished Airing ", "FINISHED"), (normalise_status, "hiatus", "HIATUS"),
    ],
)
def test_text_helpers_keep_their_behaviour_on_strings(helper, value, expected):
    assert helper(value, "field") == expected


@pytest.mark.parametrize("helper", [text_or_none, upper_or_none, lower_or_none, normalise_status])
@pytest.mark.parametrize("value", [0, 12345, 1.5, False, [], ["x"], {}])
def test_text_helpers_name_the_field_of_a_non_string(helper, value):
    with pytest.raises(ValueError, match=rf"^synopsis: expected a string, got {type(value).__name__} "):
        helper(value, "synopsis")


def test_missing_sources_are_all_named_before_any_is_read(tmp_path, samples):
    season_file = tmp_path / "seasons.jsonl"
    season_file.write_bytes(lines(*samples.raw["jikan"]))
    sources = [("enriched", "enriched", tmp_path / "no.json"), ("mal_seasons", "jikan", season_file),
               ("bangumi", "bangumi", tmp_path / "no.jsonl")]
    with pytest.raises(SourceError) as raised:
        ingest(sources)
    assert str(raised.value) == (f"data.enriched: {tmp_path / 'no.json'} does not exist; "
                                 f"data.bangumi: {tmp_path / 'no.jsonl'} does not exist")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"data": [', "invalid JSON: Expecting value at line 1 column 11"),
        (b'{"data": ["\xff"]}', "invalid UTF-8: invalid start byte at byte 12"),
        (b"[1, 2]", "expected a JSON object with a 'data' list"),
        (b'{"data": {}}', "expected a JSON object with a 'data' list"),
    ],
    ids=["invalid-json", "invalid-utf8", "not-an-object", "data-not-a-list"],
)
def test_an_unreadable_enriched_document_is_a_lab_error_naming_the_file(tmp_path, content, message):
    path = tmp_path / "enriched.json"
    path.write_bytes(content)
    with pytest.raises(SourceError) as raised:
        ingest([("enriched", "enriched", path)])
    assert str(raised.value) == f"{path}: {message}"


def ingest_stage():
    spec = importlib.util.spec_from_file_location("ingest_stage", REPO / "pipelines" / "ingest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def run_ingest_stage(directory: Path, data: dict[str, str]) -> None:
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8")) | {"data": {"root": "."} | data}
    (directory / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    outputs = [f"--{name}=out/{name}.json" for name in ("corpus", "bangumi", "quarantine", "metrics")]
    ingest_stage()(["--params", "params.yaml", *outputs])


@pytest.mark.parametrize(
    ("empty", "message"),
    [
        ("anime", "anime corpus: no record ingested from data.enriched, data.mal_seasons (0 read, 0 quarantined)"),
        ("bangumi", "bangumi records: no record ingested from data.bangumi (0 read, 0 quarantined)"),
    ],
    ids=["anime", "bangumi"],
)
def test_the_stage_fails_on_an_empty_corpus_after_writing_quarantine_and_metrics(
    tmp_path, monkeypatch, samples, empty, message
):
    monkeypatch.chdir(tmp_path)
    Path("enriched.json").write_bytes(document() if empty == "anime" else document(*samples.raw["enriched"]))
    Path("seasons.jsonl").write_bytes(b"" if empty == "anime" else lines(*samples.raw["jikan"]))
    Path("bangumi.jsonl").write_bytes(lines(*samples.raw["bangumi"]) if empty == "anime" else b"\n")
    with pytest.raises(NothingIngested) as raised:
        run_ingest_stage(tmp_path, {"enriched": "enriched.json", "mal_seasons": "seasons.jsonl",
                                    "bangumi": "bangumi.jsonl"})
    assert str(raised.value) == message
    assert Path("out/quarantine.json").exists() and Path("out/metrics.json").exists()
    assert not Path("out/corpus.json").exists()


def test_the_stage_names_every_missing_input_before_reading(tmp_path, monkeypatch, samples):
    monkeypatch.chdir(tmp_path)
    Path("enriched.json").write_bytes(document(*samples.raw["enriched"]))
    with pytest.raises(SourceError) as raised:
        run_ingest_stage(tmp_path, {"enriched": "enriched.json", "mal_seasons": "../shared/data/x.jsonl",
                                    "bangumi": "bangumi.jsonl"})
    assert str(raised.value) == ("data.mal_seasons: ../shared/data/x.jsonl does not exist; "
                                 "data.bangumi: bangumi.jsonl does not exist")
    assert not Path("out").exists()


INVALID_UTF8 = [b"\xff", b"\xfe", b"\x80", b"\xc3", b"\xe3\x81", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"]
NON_OBJECTS = [b"[]", b"[1, 2, 3]", b"42", b'"a string"', b"null", b"true", b"{}", b'{"mal_id": 1}x']
WRONG_VALUES = [12345, -1, 3.5, True, None, "", "abc", [], ["x"], {}, {"a": 1}, 10**400]


def mutate(rng: random.Random, line: bytes) -> bytes:
    at = rng.randrange(len(line) + 1)
    kind = rng.choice(["valid", "flip", "insert", "delete", "truncate", "cr", "cr-between-tokens", "nul",
                       "invalid-utf8", "non-object", "wrong-type"])
    if kind == "flip" and at < len(line):
        return line[:at] + bytes([rng.randrange(256)]) + line[at + 1:]
    if kind == "insert":
        return line[:at] + rng.randbytes(rng.randint(1, 4)) + line[at:]
    if kind == "delete":
        return line[:at] + line[at + rng.randint(1, 40):]
    if kind == "truncate":
        return line[:at]
    if kind in ("cr", "nul", "invalid-utf8"):
        inserted = {"cr": b"\r", "nul": b"\x00"}.get(kind) or rng.choice(INVALID_UTF8)
        return line[:at] + inserted + line[at:]
    if kind == "cr-between-tokens":
        return line.replace(b', "', b',\r "', rng.randint(1, 5))
    if kind == "non-object":
        return rng.choice(NON_OBJECTS)
    if kind == "wrong-type":
        record = json.loads(line)
        record[rng.choice(sorted(record))] = rng.choice(WRONG_VALUES)
        return json.dumps(record).encode()
    return line


def is_blank(line: bytes) -> bool:
    try:
        return not line.decode("utf-8").strip()
    except UnicodeDecodeError:
        return False


def test_fuzzed_season_lines_never_escape_and_every_record_is_accounted_for(tmp_path, repo_params):
    rng = random.Random(20240611)
    real = repo_params.data.path("mal_seasons").read_bytes().split(b"\n")[:50]
    content = codecs.BOM_UTF8 + b"\n".join(mutate(rng, rng.choice(real)) for _ in range(400)) + b"\n"
    path = tmp_path / "fuzzed.jsonl"
    path.write_bytes(content)

    result = ingest([("mal_seasons", "jikan", path)])

    physical = content.removeprefix(codecs.BOM_UTF8).split(b"\n")
    assert result.read == sum(not is_blank(line) for line in physical)
    assert result.read == len(result.entries) + len(result.quarantined)
    assert result.read_per_source == {"mal_seasons": result.read}
    for entry in result.entries:
        assert AnimeEntry.model_validate_json(entry.model_dump_json()) == entry
    assert len({entry.id for entry in result.entries}) == len(result.entries)
    assert all(q.reason and q.location.startswith("fuzzed.jsonl:") for q in result.quarantined)
    assert len({q.location for q in result.quarantined}) == len(result.quarantined)

    write_jsonl(tmp_path / "quarantine.jsonl", [q.as_json() for q in result.quarantined])
    for row in read_jsonl(tmp_path / "quarantine.jsonl"):
        raw = base64.b64decode(row["raw"]) if row.get("raw_encoding") == "base64" else row["raw"].encode()
        line_number = int(row["location"].rsplit(":", 1)[1])
        assert raw == physical[line_number - 1].removesuffix(b"\r")

    # The seed exercises every path: kept records, and quarantine for bytes, syntax, shape and types.
    kinds = {q.reason.split(":", 1)[0] for q in result.quarantined}
    assert len(result.entries) > 20
    assert {"invalid UTF-8", "invalid JSON", "ValueError", "duplicate id"} <= kinds
    assert kinds - {"invalid UTF-8", "invalid JSON", "ValueError", "duplicate id"}  # a field's name
