"""Signed webhook delivery (Standard Webhooks) to client apps when a task changes state.

- :mod:`web_hooks.events`: event types, the event model, payload builders, the ``TaskEventSink`` and
  ``SigningSecrets`` protocols the service wires together.
- :mod:`web_hooks.signing`: Standard Webhooks signatures (``whsec_`` secrets, ``v1,`` signatures).
- :mod:`web_hooks.urls`: SSRF-safe URL validation (resolve, check every address, connect to it).
- :mod:`web_hooks.outbox`: the durable outbox in the task database (SQLite or PostgreSQL).
- :mod:`web_hooks.delivery`: the worker that claims due messages, signs, POSTs and retries.
"""
