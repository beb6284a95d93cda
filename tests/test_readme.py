"""The README's copy of the vector table must match the one in code."""

from __future__ import annotations

from animelab.fields import VECTORS
from tests.conftest import REPO


def test_readme_vector_table_matches_the_code():
    rows = [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in (REPO / "README.md").read_text(encoding="utf-8").splitlines()
        if line.startswith("| ") and line.split("|")[1].strip().endswith("_vector")
    ]
    expected = [
        [spec.name, spec.modality, spec.priority, spec.long_text if spec.modality == "text" else "-",
         ", ".join(spec.sources)]
        for spec in VECTORS
    ]
    assert rows == expected
