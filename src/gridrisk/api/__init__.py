"""The HTTP layer: dependencies, one router per resource, OGC and tiles as their own routers."""
