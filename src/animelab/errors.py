"""Errors a user can act on, and the stage entry point: stages print the message and exit without a traceback."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError


class LabError(Exception):
    """Bad params, a missing model, too many bad records, stale inputs: the message says which."""


def problems(error: ValidationError) -> list[str]:
    """One ``dotted.key: message`` per problem, so a message names the key to fix."""
    return [f"{'.'.join(str(part) for part in detail['loc'])}: {detail['msg']}" for detail in error.errors()]


def run_stage(main: Callable[[], None]) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        main()
    except LabError as error:
        sys.exit(f"error: {error}")
    except FileNotFoundError as error:  # an input an earlier stage writes, or a path given on the command line
        sys.exit(f"error: {error.filename or error} does not exist: run the stage that writes it (dvc repro) "
                 "or fix the path")


def stage_args(description: str, argv: list[str] | None, *paths: str, names: tuple[str, ...] = (),
               **helps: str) -> argparse.Namespace:
    """A stage's inputs and outputs: every one a required path option (``--corpus``), named in dvc.yaml's cmd,
    so the stage file is the one place that says where data lives. ``names``: optional string options
    (which part of a section a foreach stage runs)."""
    parser = argparse.ArgumentParser(description=description)
    for name in paths:
        parser.add_argument(f"--{name}", type=Path, required=True, help=helps.get(name))
    for name in names:
        parser.add_argument(f"--{name}", default=None, help=helps.get(name))
    return parser.parse_args(argv)
