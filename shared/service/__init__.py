"""The HTTP service's core: use cases, the local runner, progress estimates; no HTTP here."""
