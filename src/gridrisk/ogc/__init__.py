"""OGC API - Features: its collections, models, OpenAPI document, HTML views and routes."""
