"""The HTTP API (FastAPI): routes, auth, error shape; the same app under uvicorn and Mangum."""
