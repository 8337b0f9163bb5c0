"""Every feature kind the service registers, by name: what main.py, the CLI, OGC and the tiles read."""

from __future__ import annotations

from gridrisk.registry.hazard_points import HAZARD_POINTS
from gridrisk.registry.kind import FeatureKind
from gridrisk.registry.response_resources import RESCUE_TEAMS, SUPPLY_DEPOTS, VULNERABLE_SITES
from gridrisk.registry.risk_sources import RISK_SOURCES
from gridrisk.registry.shelters import SHELTERS

KINDS: dict[str, FeatureKind] = {
    k.name: k for k in (RISK_SOURCES, SHELTERS, HAZARD_POINTS, VULNERABLE_SITES, RESCUE_TEAMS, SUPPLY_DEPOTS)
}
