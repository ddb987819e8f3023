"""The HTTP trigger API (FastAPI): jobs, providers, provider callbacks, health and metrics."""
