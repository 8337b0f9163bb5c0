"""Match a warning's work orders with people, teams, shelter places and supplies, in its transaction.

Runs right after the targeting (warning_targeting.py), on the warning's live orders, and books only
what is not booked yet, so a re-post keeps every booking it made before:
- **responsible**: each order names the grid worker of its cell and the target's responsible unit;
- **teams**: a need for a capability (warning_rule_needs) gets the nearest available team that has it,
  by true distance from the target to the team's base; orders are served strongest action first,
  then most people, then id;
- **shelter places**: the people of every evacuation are placed in shelters with room (capacity less
  occupancy less what live orders of any warning reserved), placing as many people as possible and,
  among such placements, with the least total person-distance: a transportation problem solved
  exactly (linear programming: network constraints, so the optimum is integral). The arcs are every
  group × shelter pair when there are at most EXACT_ARCS, else each group's K nearest shelters,
  widened while people are left and places remain;
- **supplies**: each item need is reserved from the nearest depots with free stock, split over
  several when one has too little.
What could not be booked is written on the order (`match_notes`). Concurrency: every matching locks
the rows it books from (teams, shelters, depots) in id order and reads what is booked only after,
so two warnings matched at once queue and never book one team, place or item twice.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from pyproj import Geod
from scipy.optimize import linprog
from scipy.sparse import coo_matrix

from gridrisk.db.sql_files import sql

GEOD = Geod(ellps="WGS84")
EXACT_ARCS = 20_000
K_STEPS = (12, 48)  # nearest shelters per group before all of them
ACTIVE = ("open", "acknowledged", "in_progress")


@dataclass
class Need:
    order_id: int
    lon: float
    lat: float
    persons: int
    rank: int
    capability: str | None
    item: str | None
    amount: int


@dataclass
class Matched:
    """What one matching booked, and per order what it could not."""

    teams: int = 0
    persons_placed: int = 0
    persons_unplaced: int = 0
    supplies: int = 0
    notes: dict[int, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    shelter: dict[int, tuple[int, float, str]] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {
            "teams_booked": self.teams,
            "persons_placed": self.persons_placed,
            "persons_without_place": self.persons_unplaced,
            "supply_lines_reserved": self.supplies,
        }


async def match_orders(conn: AsyncConnection, warning_id: int) -> dict[str, int]:
    """Book what the warning's live orders still need; return counts of what was booked and missed."""
    await conn.execute(sql("warning_match_responsible"), {"warning_id": warning_id})
    cur = await conn.execute(sql("warning_match_needs"), {"warning_id": warning_id})
    needs = [Need(**r) for r in await cur.fetchall()]
    cur = await conn.execute(sql("warning_match_noted"), {"warning_id": warning_id})
    noted = {r["id"] for r in await cur.fetchall()}
    out = Matched()
    await _teams(conn, [n for n in needs if n.capability is not None], out)
    await _shelters(conn, [n for n in needs if n.capability is None and n.item is None and n.amount > 0], out)
    await _supplies(conn, [n for n in needs if n.item is not None and n.amount > 0], out)
    touched = sorted(noted | {n.order_id for n in needs})
    if touched:
        shelter = [out.shelter.get(o) for o in touched]
        await conn.execute(
            sql("warning_match_orders_update"),
            {
                "orders": touched,
                "shelters": [s[0] if s else None for s in shelter],
                "distances": [s[1] if s else None for s in shelter],
                "shelter_notes": [s[2] if s else None for s in shelter],
                "notes": [Jsonb(out.notes.get(o, [])) for o in touched],
            },
        )
    return out.counts()


def _distances(lon: float, lat: float, lons: np.ndarray, lats: np.ndarray) -> np.ndarray:
    """Geodesic distances (m, WGS 84) from one point to many."""
    n = len(lons)
    return GEOD.inv(np.full(n, lon), np.full(n, lat), lons, lats)[2]


# ---------------------------------------------------------------------------------------------
# Teams


async def _teams(conn: AsyncConnection, needs: list[Need], out: Matched) -> None:
    if not needs:
        return
    capabilities = sorted({n.capability for n in needs})
    cur = await conn.execute(sql("warning_match_teams_lock"), {"capabilities": capabilities})
    teams = await cur.fetchall()
    cur = await conn.execute(sql("warning_match_teams_busy"), {"ids": [t["id"] for t in teams]})
    busy = {r["team_id"] for r in await cur.fetchall()}
    free = [t for t in teams if t["id"] not in busy]
    ids = np.array([t["id"] for t in free], dtype=np.int64)
    lons = np.array([t["lon"] for t in free])
    lats = np.array([t["lat"] for t in free])
    available = np.ones(len(free), dtype=bool)
    able = {c: np.array([c in t["capabilities"] for t in free], dtype=bool) for c in capabilities}
    booked: list[tuple[int, int, str, float]] = []
    for need in needs:  # already in priority order: strongest action, most people, order id
        candidates = np.flatnonzero(available & able[need.capability])
        if not len(candidates):
            out.notes[need.order_id].append(
                {
                    "need": f"team:{need.capability}",
                    "short": 1,
                    "message": f"No available rescue team can do {need.capability}.",
                }
            )
            continue
        d = _distances(need.lon, need.lat, lons[candidates], lats[candidates])
        best = np.lexsort((ids[candidates], d))[0]  # nearest; the lower id on a tie
        k = candidates[best]
        available[k] = False
        booked.append((need.order_id, int(ids[k]), need.capability, float(d[best])))
    if booked:
        orders, team_ids, caps, dist = zip(*booked, strict=True)
        await conn.execute(
            sql("warning_match_teams_book"),
            {
                "orders": list(orders),
                "teams": list(team_ids),
                "capabilities": list(caps),
                "distances": list(dist),
            },
        )
    out.teams += len(booked)


# ---------------------------------------------------------------------------------------------
# Shelter places


async def _shelters(conn: AsyncConnection, groups: list[Need], out: Matched) -> None:
    if not groups:
        return
    cur = await conn.execute(sql("warning_match_shelters_lock"))
    locked = [r["id"] for r in await cur.fetchall()]
    cur = await conn.execute(sql("warning_match_shelters_free"), {"ids": locked})
    free = {r["id"]: int(r["free"]) for r in await cur.fetchall()}
    demand = {g.order_id: g.amount for g in groups}
    placed: dict[tuple[int, int], int] = {}
    distance: dict[tuple[int, int], float] = {}
    exact = len(groups) * len(free) <= EXACT_ARCS
    for k in (None,) if exact else (*K_STEPS, None):
        left = [g for g in groups if demand[g.order_id] > 0]
        room = {s: f for s, f in free.items() if f > 0}
        if not left or not room:
            break
        cur = await conn.execute(
            sql("warning_match_shelter_arcs"),
            {
                "orders": [g.order_id for g in left],
                "lons": [g.lon for g in left],
                "lats": [g.lat for g in left],
                "shelters": sorted(room),
                "k": k,
            },
        )
        arcs = [(r["order_id"], r["shelter_id"], float(r["distance_m"])) for r in await cur.fetchall()]
        metres = {(o, s): d for o, s, d in arcs}
        for key, persons in transport(demand, room, arcs).items():
            placed[key] = placed.get(key, 0) + persons
            distance[key] = metres[key]
            demand[key[0]] -= persons
            free[key[1]] -= persons
    if placed:
        keys = sorted(placed)
        await conn.execute(
            sql("warning_match_shelters_book"),
            {
                "orders": [o for o, _ in keys],
                "shelters": [s for _, s in keys],
                "persons": [placed[k] for k in keys],
                "distances": [distance[k] for k in keys],
            },
        )
    by_order: dict[int, list[tuple[int, int, float]]] = defaultdict(list)
    for (order_id, shelter_id), persons in placed.items():
        by_order[order_id].append((persons, shelter_id, distance[(order_id, shelter_id)]))
    for g in groups:
        parts = sorted(by_order.get(g.order_id, []), key=lambda p: (-p[0], p[2], p[1]))
        got = sum(p[0] for p in parts)
        out.persons_placed += got
        short = g.amount - got
        out.persons_unplaced += short
        if parts:
            persons, shelter_id, d = parts[0]
            split = "; ".join(f"{p} to shelter {s} ({m / 1000:.1f} km)" for p, s, m in parts)
            note = f"{got} of {g.amount} people placed: {split}." if len(parts) > 1 or short else None
            out.shelter[g.order_id] = (
                shelter_id,
                d,
                note or f"All {got} people placed in shelter {shelter_id}.",
            )
        if short > 0:
            out.notes[g.order_id].append(
                {
                    "need": "shelter",
                    "short": short,
                    "message": f"{short} of {g.amount} people have no shelter place: every open or standby "
                    "shelter in reach is full or reserved. Open more shelters, then post the warning again.",
                }
            )


def transport(
    demand: dict[int, int], free: dict[int, int], arcs: list[tuple[int, int, float]]
) -> dict[tuple[int, int], int]:
    """The most people placed along ARCS (group, shelter, metres), and of those the least person-distance.

    Two linear programs over the arcs: the first finds how many can be placed at most; the second,
    holding that many, minimises the total person-distance. Their constraint matrix is a network's
    (totally unimodular), so HiGHS's simplex vertex is integral; it is rounded against float noise.
    """
    arcs = [(g, s, d) for g, s, d in arcs if demand.get(g, 0) > 0 and free.get(s, 0) > 0]
    if not arcs:
        return {}
    groups = sorted({g for g, _, _ in arcs})
    shelters = sorted({s for _, s, _ in arcs})
    gi = {g: i for i, g in enumerate(groups)}
    si = {s: i for i, s in enumerate(shelters)}
    n = len(arcs)
    rows = [gi[g] for g, _, _ in arcs] + [len(groups) + si[s] for _, s, _ in arcs]
    a_ub = coo_matrix(
        (np.ones(2 * n), (rows, list(range(n)) * 2)), shape=(len(groups) + len(shelters), n)
    ).tocsr()
    b_ub = np.array([demand[g] for g in groups] + [free[s] for s in shelters], dtype=float)
    most = linprog(-np.ones(n), A_ub=a_ub, b_ub=b_ub, bounds=(0, None), method="highs-ds")
    if not most.success:
        raise RuntimeError(f"shelter placement failed: {most.message}")
    total = round(-most.fun)
    cost = np.array([d for _, _, d in arcs]) / 1000.0  # km: well-scaled coefficients
    best = linprog(
        cost, A_ub=a_ub, b_ub=b_ub, A_eq=np.ones((1, n)), b_eq=[total], bounds=(0, None), method="highs-ds"
    )
    if not best.success:
        raise RuntimeError(f"shelter placement failed: {best.message}")
    return {(g, s): int(round(x)) for (g, s, _), x in zip(arcs, best.x, strict=True) if round(x) > 0}


# ---------------------------------------------------------------------------------------------
# Supplies


async def _supplies(conn: AsyncConnection, needs: list[Need], out: Matched) -> None:
    if not needs:
        return
    items = sorted({n.item for n in needs})
    cur = await conn.execute(sql("warning_match_depots_lock"), {"items": items})
    depots = await cur.fetchall()
    cur = await conn.execute(sql("warning_match_depots_reserved"), {"ids": [d["id"] for d in depots]})
    reserved = {(r["depot_id"], r["item"]): r["reserved"] for r in await cur.fetchall()}
    ids = np.array([d["id"] for d in depots], dtype=np.int64)
    lons = np.array([d["lon"] for d in depots])
    lats = np.array([d["lat"] for d in depots])
    stock = {
        item: np.array([int(d["stock"].get(item, 0)) - reserved.get((d["id"], item), 0) for d in depots])
        for item in items
    }
    booked: list[tuple[int, int, str, int, float]] = []
    for need in needs:
        have = stock[need.item]
        candidates = np.flatnonzero(have > 0)
        left = need.amount
        if len(candidates):
            d = _distances(need.lon, need.lat, lons[candidates], lats[candidates])
            for j in np.lexsort((ids[candidates], d)):
                k = candidates[j]
                take = int(min(left, have[k]))
                have[k] -= take
                left -= take
                booked.append((need.order_id, int(ids[k]), need.item, take, float(d[j])))
                if left == 0:
                    break
        if left > 0:
            out.notes[need.order_id].append(
                {
                    "need": f"item:{need.item}",
                    "short": left,
                    "message": f"{left} of {need.amount} {need.item} could not be reserved: no depot has "
                    "them free.",
                }
            )
    if booked:
        orders, depot_ids, its, quantities, dist = zip(*booked, strict=True)
        await conn.execute(
            sql("warning_match_supplies_book"),
            {
                "orders": list(orders),
                "depots": list(depot_ids),
                "items": list(its),
                "quantities": list(quantities),
                "distances": list(dist),
            },
        )
    out.supplies += len(booked)
