"""The product's state machines, as Amazon States Language documents.

The same files are deployed to AWS Step Functions (serverless.yml substitutes the ``${...FunctionArn}``
variables) and run in-process by the embedded engine (:mod:`shared.asl`), which resolves the same
variables to the same Python stage functions.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any


def available() -> list[str]:
    """Names of the pipelines that ship with VidLuxe (``enhance``, ...)."""
    return sorted(
        entry.name.removesuffix(".asl.json")
        for entry in resources.files(__name__).iterdir()
        if entry.name.endswith(".asl.json")
    )


def definition(name: str) -> dict[str, Any]:
    """The parsed ASL document of pipeline ``name``; raises KeyError for an unknown pipeline."""
    if name not in available():
        raise KeyError(f"No state machine named {name!r}; available: {', '.join(available())}")
    document: dict[str, Any] = json.loads(resources.files(__name__).joinpath(f"{name}.asl.json").read_text())
    return document
