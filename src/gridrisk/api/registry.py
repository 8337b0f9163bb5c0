"""The location check located writes share (registries, work orders): kept in registry/store.py."""

from __future__ import annotations

from gridrisk.registry.store import check_inside_city

__all__ = ["check_inside_city"]
