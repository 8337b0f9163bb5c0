"""Vector tiles and OGC API items: gridrisk side by side with tipg, on the same database, in one run.

tipg (PyPI) is the Python reference server for OGC API Features and Tiles over PostGIS. It runs
from its own environment (bench/.venv-tipg, created here when missing) against the same database,
serving views in a schema of their own (`bench_tipg`, created for the run and dropped after) that
hold exactly what gridrisk serves: safety cells joined with their colour.

Tiles: every non-empty z10–z14 tile of the safety layer (a fixed list), each fetched once per pass
by wrk through a Lua script that walks the list and stops at its end. Cold = the first
pass on a freshly started server (gridrisk's tile cache empty; tipg has none); warm = the second
pass. Items: bbox queries returning 50 and 500 features, for a fixed duration.

Usage: .venv/bin/python bench/tiles_vs_tipg.py [--connections 8] [--workers 1] [--seconds 15]
                                              [--rounds 1] [--skip-items]
Needs the full demo city in GRIDRISK_DATABASE_URL (`make run` or `gridrisk demo ensure` builds it).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
from common import ROOT, _ms, ensure_tool, loop_script, machine, save, server, wrk

from gridrisk.settings import Settings
from gridrisk.tiles.mvt import tile_range

TIPG_VENV = ROOT / "bench" / ".venv-tipg"
SCHEMA = "bench_tipg"
ZOOMS = range(10, 15)
ITEM_SIZES = (50, 500)
N_BBOXES = 1000

# What each server serves: the tile view carries the tile properties of gridrisk's safety layer, the
# items view the properties of gridrisk's OGC safety items, so both servers send the same content.
VIEWS = f"""
DROP SCHEMA IF EXISTS {SCHEMA} CASCADE;
CREATE SCHEMA {SCHEMA};
CREATE VIEW {SCHEMA}.safety AS
SELECT c.id, c.code, c.name, r.colour, c.district_code, c.geom
FROM cells c JOIN cell_risk r ON r.cell_id = c.id WHERE c.layer = 'safety';
CREATE VIEW {SCHEMA}.safety_items AS
SELECT c.id, c.code, c.name, c.district_code, c.population, c.area_m2, r.colour, r.computed_colour,
       r.pinned_colour IS NOT NULL AS pinned, r.n_red, r.n_orange, r.n_yellow, r.n_blue, r.score,
       r.changed_at, c.geom
FROM cells c JOIN cell_risk r ON r.cell_id = c.id WHERE c.layer = 'safety';
"""


# ---------------------------------------------------------------------------------------------
# tipg


def ensure_tipg() -> tuple[Path, str]:
    """The tipg environment's uvicorn and tipg's version, installing both when missing."""
    python = TIPG_VENV / "bin" / "python"
    if not python.exists():
        print("creating bench/.venv-tipg (tipg, uvicorn[standard])…", file=sys.stderr)
        subprocess.run(["python3", "-m", "venv", str(TIPG_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "tipg", "uvicorn[standard]"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    version = subprocess.run(
        [str(python), "-c", "import tipg; print(tipg.__version__)"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return TIPG_VENV / "bin" / "uvicorn", version


@contextmanager
def tipg_server(database_url: str, port: int, workers: int):
    """tipg under uvicorn (uvloop, httptools: as gridrisk runs), serving the bench schema only."""
    uvicorn, _ = ensure_tipg()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TIPG_", "GRIDRISK_"))},
        "DATABASE_URL": database_url,
        "TIPG_DB_SCHEMAS": json.dumps([SCHEMA]),
        # The same tiles as gridrisk's: extent 4096, buffer 64, and every feature of the tile.
        "TIPG_TILE_RESOLUTION": "4096",
        "TIPG_TILE_BUFFER": "64",
        "TIPG_MAX_FEATURES_PER_TILE": "100000",
        "TIPG_ADD_TILES_VIEWER": "false",
    }
    cmd = [
        str(uvicorn),
        "tipg.main:app",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    proc = subprocess.Popen(
        cmd, env=env, cwd=tempfile.gettempdir(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                r = httpx.get(f"{base}/collections", timeout=5)
                if r.status_code == 200 and any(
                    c["id"] == f"{SCHEMA}.safety" for c in r.json()["collections"]
                ):
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None:
                sys.exit(f"tipg exited: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.3)
        else:
            sys.exit("tipg did not list the bench collections within 60 s")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


# ---------------------------------------------------------------------------------------------
# What is requested


def tile_list(conn: psycopg.Connection, seed: int = 42) -> list[tuple[int, int, int]]:
    """Every z10–z14 tile holding at least one safety cell: zoom by zoom, each zoom shuffled.

    The heavy low-zoom tiles come first, so the few requests still in flight when the walk ends
    (not counted) are cheap z14 ones, for both servers alike.
    """
    extent = conn.execute(
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e)"
        " FROM (SELECT ST_Extent(geom) e FROM cells WHERE layer = 'safety') x"
    ).fetchone()
    tiles: list[tuple[int, int, int]] = []
    for z in ZOOMS:
        x0, y0, x1, y1 = tile_range(extent, z)
        rows = conn.execute(
            "SELECT x, y FROM generate_series(%s::int, %s::int) x, generate_series(%s::int, %s::int) y"
            " WHERE EXISTS (SELECT 1 FROM cells c WHERE c.layer = 'safety'"
            "   AND c.geom && ST_Transform(ST_TileEnvelope(%s, x, y), 4326))",
            (x0, x1, y0, y1, z),
        ).fetchall()
        zoom = [(z, x, y) for x, y in rows]
        random.Random(seed + z).shuffle(zoom)
        tiles += zoom
    return tiles


def item_bboxes(conn: psycopg.Connection, n_features: int, count: int, seed: float = 0.42) -> list[str]:
    """COUNT bboxes over the city that each meet at least N_FEATURES safety cells.

    Around a random point of the city, the box reaches the N-th nearest cell: every one of the N
    nearest cells meets it, so `limit=N` returns N features.
    """
    conn.execute("SELECT setseed(%s)", (seed,))
    rows = conn.execute(
        "WITH pts AS (SELECT (ST_Dump(ST_GeneratePoints(ST_Union(geom), %s, 7))).geom AS p"
        "             FROM cells WHERE layer = 'district')"
        " SELECT ST_X(p), ST_Y(p), d FROM pts, LATERAL ("
        "   SELECT c.geom <-> pts.p AS d FROM cells c WHERE c.layer = 'safety'"
        "   ORDER BY c.geom <-> pts.p OFFSET %s - 1 LIMIT 1) k",
        (count, n_features),
    ).fetchall()
    out = []
    for x, y, d in rows:
        r = float(d) * 1.01 + 1e-6
        out.append(f"{x - r:.6f},{y - r:.6f},{x + r:.6f},{y + r:.6f}")
    return out


# ---------------------------------------------------------------------------------------------
# wrk over a list


LIST_SCRIPT = r"""
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } gr_timespec;
int clock_gettime(int clk_id, gr_timespec *tp);
]]
local function now()
  local t = ffi.new("gr_timespec")
  ffi.C.clock_gettime(1, t)
  return tonumber(t.tv_sec) + tonumber(t.tv_nsec) * 1e-9
end

local paths = {%(paths)s}
local nthreads = %(threads)d
local done_prefix = "%(done)s"
local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

-- Thread TID walks paths TID+1, TID+1+nthreads, ...: together the threads fetch each path once.
-- Globals, so that done() can read them with thread:get().
i, first, last, ok, empty, bad, hits, ended = nil, nil, nil, 0, 0, 0, 0, false
function init(args)
  i = tid + 1 - nthreads
end

function request()
  i = i + nthreads
  if i > #paths then
    if not ended then
      ended = true
      local f = io.open(done_prefix .. tid, "w")
      f:write("done")
      f:close()
    end
    wrk.thread:stop()
    i = #paths + 1
    return wrk.format("GET", paths[1])
  end
  if first == nil then first = now() end
  return wrk.format("GET", paths[i])
end

function response(status, headers, body)
  last = now()
  if status == 200 then ok = ok + 1 elseif status == 204 then empty = empty + 1 else bad = bad + 1 end
  if headers["x-tile-cache"] == "hit" then hits = hits + 1 end
end

function done(summary, latency, requests)
  local t0, t1, n_ok, n_empty, n_bad, n_hits = nil, nil, 0, 0, 0, 0
  for _, t in ipairs(threads) do
    local a, b = t:get("first"), t:get("last")
    if a ~= nil and (t0 == nil or a < t0) then t0 = a end
    if b ~= nil and (t1 == nil or b > t1) then t1 = b end
    n_ok = n_ok + t:get("ok"); n_empty = n_empty + t:get("empty")
    n_bad = n_bad + t:get("bad"); n_hits = n_hits + t:get("hits")
  end
  io.write(string.format("LIST %%d %%d %%d %%d %%.6f\n", n_ok, n_empty, n_bad, n_hits, (t1 or 0) - (t0 or 0)))
end
"""


def wrk_list(
    base: str, paths: list[str], *, connections: int, threads: int = 2, timeout: float = 600
) -> dict:
    """Fetch each of PATHS exactly once at CONNECTIONS; requests/s over the wall time of the walk."""
    with tempfile.TemporaryDirectory(prefix="gridrisk-bench-") as tmp:
        done = f"{tmp}/done."
        script = Path(tmp) / "list.lua"
        script.write_text(
            LIST_SCRIPT % {"paths": ",".join(json.dumps(p) for p in paths), "threads": threads, "done": done}
        )
        cmd = [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{int(timeout)}s",
            "--latency",
            "--timeout",
            "30s",
        ]
        proc = subprocess.Popen([*cmd, "-s", str(script), base], stdout=subprocess.PIPE, text=True)
        while proc.poll() is None and len(list(Path(tmp).glob("done.*"))) < threads:
            time.sleep(0.05)
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # wrk prints its statistics on SIGINT
        out = proc.communicate(timeout=60)[0]
    m = re.search(r"^LIST (\d+) (\d+) (\d+) (\d+) ([\d.]+)$", out, re.M)
    if not m:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    n_ok, n_empty, n_bad, hits = (int(m.group(i)) for i in range(1, 5))
    seconds = float(m.group(5))
    done_n = n_ok + n_empty + n_bad
    result = {
        "tiles": len(paths),
        "responses": done_n,
        "status_200": n_ok,
        "status_204": n_empty,
        "errors": n_bad,
        "cache_hits": hits,
        "seconds": round(seconds, 3),
        "rps": round(done_n / seconds, 1) if seconds else 0.0,
        "connections": connections,
    }
    for pct in ("50", "90", "99"):
        result[f"p{pct}_ms"] = _ms(re.search(rf"^\s+{pct}(?:\.000)?%\s+(\S+)", out, re.M).group(1))
    return result


def check_items(base: str, paths: list[str], n: int) -> None:
    """Each sampled query answers 200 with exactly N features (so both servers do the same work)."""
    with httpx.Client(base_url=base, timeout=60) as client:
        for p in paths[:: max(1, len(paths) // 10)]:
            r = client.get(p)
            if r.status_code != 200:
                sys.exit(f"{base}{p} answered {r.status_code}: {r.text[:300]}")
            got = len(r.json()["features"])
            if got != n:
                sys.exit(f"{base}{p} returned {got} features, expected {n}")


def check_tiles(ours: str, theirs: str, tiles: list[tuple[int, int, int]]) -> dict:
    """Both servers draw the same cells in a sample of the tiles (by code); return what was compared."""
    import mapbox_vector_tile

    def codes(base: str, path: str) -> set[str]:
        r = httpx.get(base + path, timeout=60)
        if r.status_code == 204 or not r.content:
            return set()
        r.raise_for_status()
        return {
            f["properties"]["code"]
            for layer in mapbox_vector_tile.decode(r.content).values()
            for f in layer["features"]
        }

    sample = tiles[:: max(1, len(tiles) // 40)]
    features = buffer_only = 0
    for z, x, y in sample:
        a = codes(ours, f"/tiles/safety/{z}/{x}/{y}.mvt")
        b = codes(theirs, f"/collections/{SCHEMA}.safety/tiles/WebMercatorQuad/{z}/{x}/{y}")
        # gridrisk also selects cells that reach only into the tile's 64-pixel buffer (tipg draws
        # the buffer too, but selects by the tile itself): a few more features, never fewer.
        if not b <= a:
            sys.exit(f"tile {z}/{x}/{y}: tipg draws cells gridrisk does not: {sorted(b - a)[:5]}")
        features += len(b)
        buffer_only += len(a - b)
    return {"tiles_compared": len(sample), "features_both": features, "gridrisk_buffer_only": buffer_only}


def load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def tile_passes(base: str, paths: list[str], connections: int) -> dict:
    """The cold pass (first on this server process) and the warm pass (the same list again)."""
    before = load()
    cold = wrk_list(base, paths, connections=connections)
    warm = wrk_list(base, paths, connections=connections)
    return {"cold": cold, "warm": warm, "load_before": before, "load_after": load()}


def items_runs(base: str, scripts: dict[int, Path], seconds: int, connections: int) -> dict:
    out = {}
    for n, script in scripts.items():
        wrk(f"{base}/", seconds=3, connections=connections, script=script)  # warm-up
        before = load()
        res = wrk(f"{base}/", seconds=seconds, connections=connections, script=script)
        out[str(n)] = {**res, "load_before": before, "load_after": load()}
    return out


def ratio(a: float, b: float) -> float:
    return round(a / b, 2) if b else float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=15, help="duration of each items run")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1, help="server processes, the same for both")
    parser.add_argument("--rounds", type=int, default=1, help="tile passes per server (fresh process each)")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--tipg-port", type=int, default=8766)
    parser.add_argument("--skip-items", action="store_true")
    args = parser.parse_args()
    ensure_tool("wrk", "wrk")
    _, tipg_version = ensure_tipg()
    url = os.environ.get("GRIDRISK_DATABASE_URL") or Settings().database_url

    with psycopg.connect(url, autocommit=True) as conn:
        counts = dict(conn.execute("SELECT layer, count(*) FROM cells GROUP BY layer").fetchall())
        if counts.get("safety", 0) < 20_000:
            sys.exit(f"the full demo city is needed (found {counts}); run `gridrisk demo ensure` first")
        conn.execute(VIEWS)
        tiles = tile_list(conn)
        bboxes = {n: item_bboxes(conn, n, N_BBOXES) for n in ITEM_SIZES}
        # The same warm database for both servers: read what the tiles read once before any run.
        conn.execute("SELECT sum(ST_NPoints(geom)), count(*) FROM cells WHERE layer = 'safety'").fetchone()
        conn.execute("SELECT count(*), sum(n_red) FROM cell_risk WHERE layer = 'safety'").fetchone()

    per_zoom = {z: sum(1 for t in tiles if t[0] == z) for z in ZOOMS}
    ours_tiles = [f"/tiles/safety/{z}/{x}/{y}.mvt" for z, x, y in tiles]
    tipg_tiles = [f"/collections/{SCHEMA}.safety/tiles/WebMercatorQuad/{z}/{x}/{y}" for z, x, y in tiles]
    result: dict = {
        "benchmark": "tiles_vs_tipg",
        "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": machine(),
        "workers": args.workers,
        "connections": args.connections,
        "tipg_version": tipg_version,
        "tile_list": {"zooms": per_zoom, "tiles": len(tiles)},
        "tiles": {"gridrisk": [], "tipg": []},
    }
    try:
        with (
            server(url, args.port, args.workers) as ours,
            tipg_server(url, args.tipg_port, args.workers) as theirs,
        ):
            result["same_tiles"] = check_tiles(ours, theirs, tiles)
        for r in range(args.rounds):
            order = ("gridrisk", "tipg") if r % 2 == 0 else ("tipg", "gridrisk")
            for name in order:
                if name == "gridrisk":
                    with server(url, args.port, args.workers) as base:
                        result["tiles"]["gridrisk"].append(tile_passes(base, ours_tiles, args.connections))
                else:
                    with tipg_server(url, args.tipg_port, args.workers) as base:
                        result["tiles"]["tipg"].append(tile_passes(base, tipg_tiles, args.connections))
                last = result["tiles"][name][-1]
                cold, warm_ = last["cold"], last["warm"]
                print(
                    f"{name:8s} tiles cold {cold['rps']:7.1f} req/s p99 {cold['p99_ms']:8.1f} ms"
                    f" | warm {warm_['rps']:7.1f} req/s p99 {warm_['p99_ms']:8.1f} ms"
                    f" | load {last['load_before']} → {last['load_after']}",
                    flush=True,
                )
        if not args.skip_items:
            with tempfile.TemporaryDirectory(prefix="gridrisk-bench-") as tmp:
                ours = {
                    n: [f"/ogc/collections/safety/items?bbox={b}&limit={n}" for b in boxes]
                    for n, boxes in bboxes.items()
                }
                theirs = {
                    n: [f"/collections/{SCHEMA}.safety_items/items?bbox={b}&limit={n}" for b in boxes]
                    for n, boxes in bboxes.items()
                }
                with server(url, args.port, args.workers) as base:
                    for n, paths in ours.items():
                        check_items(base, paths, n)
                    scripts = {n: loop_script(p, Path(tmp) / f"ours{n}.lua") for n, p in ours.items()}
                    result["items_gridrisk"] = items_runs(base, scripts, args.seconds, args.connections)
                with tipg_server(url, args.tipg_port, args.workers) as base:
                    for n, paths in theirs.items():
                        check_items(base, paths, n)
                    scripts = {n: loop_script(p, Path(tmp) / f"tipg{n}.lua") for n, p in theirs.items()}
                    result["items_tipg"] = items_runs(base, scripts, args.seconds, args.connections)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")

    summary: dict = {}
    for phase in ("cold", "warm"):
        ours = sorted(p[phase]["rps"] for p in result["tiles"]["gridrisk"])
        theirs = sorted(p[phase]["rps"] for p in result["tiles"]["tipg"])
        summary[f"tiles_{phase}_ratio"] = ratio(statistics.median(ours), statistics.median(theirs))
        summary[f"tiles_{phase}_ratio_best"] = ratio(ours[-1], theirs[-1])
    if "items_gridrisk" in result:
        for n in ITEM_SIZES:
            summary[f"items_{n}_ratio"] = ratio(
                result["items_gridrisk"][str(n)]["rps"], result["items_tipg"][str(n)]["rps"]
            )
            ours, theirs = result["items_gridrisk"][str(n)], result["items_tipg"][str(n)]
            print(
                f"items limit={n}: gridrisk {ours['rps']:.1f} req/s p99 {ours['p99_ms']:.1f} ms"
                f" | tipg {theirs['rps']:.1f} req/s p99 {theirs['p99_ms']:.1f} ms"
            )
    result["ratios"] = summary
    print(save("tiles_vs_tipg", result))
    print("ratios (gridrisk / tipg, requests/s; tiles: median of the rounds, and best):", summary)


if __name__ == "__main__":
    if shutil.which("wrk") is None:
        ensure_tool("wrk", "wrk")
    main()
