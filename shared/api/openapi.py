"""The checked-in OpenAPI document (docs/openapi.json): written by ``python -m shared.api.openapi``.

tests/api/test_api_openapi.py fails when the app's schema drifts from the file; run this module to
update it after changing a route or a model, and review the diff.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from shared.api.app import create_app
from shared.settings_service import ServiceSettings

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def openapi_document() -> dict[str, Any]:
    """The schema of the app as ``vidluxe serve`` builds it (default settings)."""
    return create_app(service_settings=ServiceSettings()).openapi()


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def main() -> int:
    DOCUMENT.parent.mkdir(parents=True, exist_ok=True)
    DOCUMENT.write_text(render(openapi_document()), encoding="utf-8")
    print(f"wrote {DOCUMENT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
