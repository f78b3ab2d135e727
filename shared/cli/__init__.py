"""The ``vidluxe`` command line: a thin adapter around the pipeline."""

from shared.cli.main import main

__all__ = ["main"]
