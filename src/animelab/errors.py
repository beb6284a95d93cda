"""Errors a user can act on: stages print their message and exit without a traceback."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable


class LabError(Exception):
    """Bad params, a missing model, too many bad records, stale inputs: the message says which."""


def run_stage(main: Callable[[], None]) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        main()
    except LabError as error:
        sys.exit(f"error: {error}")
