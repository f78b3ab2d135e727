"""The OpenAPI document in docs/openapi.json is the app's: a route or model change must update it
(``python -m shared.api.openapi``), so client generators and reviewers see every API change."""

from __future__ import annotations

import json

from shared.api.openapi import DOCUMENT, openapi_document, render


def test_checked_in_openapi_matches_the_app() -> None:
    current = render(openapi_document())
    assert DOCUMENT.read_text(encoding="utf-8") == current, (
        "docs/openapi.json is out of date: run `python -m shared.api.openapi` and commit the result."
    )


def test_openapi_names_every_route_and_the_error_shape() -> None:
    document = json.loads(DOCUMENT.read_text(encoding="utf-8"))
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    for path, method in [
        ("/v1/videos", "post"), ("/v1/videos", "get"), ("/v1/videos/{task_id}", "get"),
        ("/v1/videos/{task_id}/cancel", "post"), ("/v1/videos/{task_id}/retry", "post"),
        ("/v1/webhooks/secret", "get"), ("/v1/webhooks/secret/rotate", "post"),
        ("/v1/webhooks/deliveries", "get"), ("/v1/webhooks/endpoints/enable", "post"),
        ("/healthz", "get"), ("/readyz", "get"),
    ]:
        assert method in paths[path], (path, method)
    assert document["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    error = document["components"]["schemas"]["ErrorDocument"]
    assert error["required"] == ["error"]
    assert "422" in paths["/v1/videos"]["post"]["responses"]
