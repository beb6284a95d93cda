"""Errors a user can act on, and how a stage or command reports them: the message, no traceback."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from pydantic import ValidationError


class LabError(Exception):
    """Bad params, a missing model, too many bad records, stale inputs: the message says which."""


def problems(error: ValidationError) -> list[str]:
    """One ``dotted.key: message`` per problem, so a message names the key to fix."""
    return [f"{'.'.join(str(part) for part in detail['loc'])}: {detail['msg']}" for detail in error.errors()]


def run_for_user(action: Callable[[], None]) -> None:
    """Run a stage or command: a user's error prints its message and exits without a traceback."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        action()
    except LabError as error:
        sys.exit(f"error: {error}")
    except FileNotFoundError as error:  # an input an earlier stage writes, or a path given on the command line
        sys.exit(f"error: {error.filename or error} does not exist: run the stage that writes it (dvc repro) "
                 "or fix the path")
