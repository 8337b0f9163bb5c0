"""Map images for leaders and reports: a layer's four-colour map, or a warning's area with its orders, as PNG.

Drawn with matplotlib (Agg, no tile server) from the database's current data: cells simplified to the
picture's pixel and filled as one collection, then a title, a legend with counts, a scale bar, the
date and north. Chinese labels need a CJK font (WenQuanYi Micro Hei, the `fonts-wqy-microhei`
package the set-up installs); without one the text falls back to DejaVu Sans.
"""

from __future__ import annotations

import io
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import shapely  # noqa: E402
from matplotlib import font_manager  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from gridrisk.vocabulary import LABELS_ZH  # noqa: E402

COLOURS = {"red": "#e53935", "orange": "#fb8c00", "yellow": "#fdd835", "blue": "#1e88e5"}
COLOUR_NAMES = LABELS_ZH["level"]
_ORDER_HEX = {
    "open": "#c2185b",
    "acknowledged": "#ffb300",
    "in_progress": "#6a1b9a",
    "done": "#00c853",
    "cancelled": "#9e9e9e",
}
ORDER_COLOURS = {status: (hex_, LABELS_ZH["order_status"][status]) for status, hex_ in _ORDER_HEX.items()}
CHINA = timezone(timedelta(hours=8))
CJK_FONTS = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
)
MAX_PIXELS = 4096


def _font() -> str:
    for path in CJK_FONTS:
        try:
            font_manager.fontManager.addfont(path)
            return font_manager.FontProperties(fname=path).get_name()
        except (FileNotFoundError, RuntimeError, OSError):
            continue
    return "DejaVu Sans"


FONT = _font()


def chinese_title(title: str | None) -> str:
    """A layer's title as people read it: "Safety-supervision grid (安监格)" → 安监格."""
    if title and "(" in title and title.endswith(")"):
        return title[title.rindex("(") + 1 : -1]
    return title or ""


def degrees_per_pixel(box: tuple[float, float, float, float], width: int, height: int) -> float:
    """The size of a pixel in degrees, for simplifying what is drawn (aspect kept, see _axes)."""
    minx, miny, maxx, maxy = box
    k = math.cos(math.radians((miny + maxy) / 2))
    return max((maxx - minx) * k / width, (maxy - miny) / height) / k


def _figure(width: int, height: int) -> tuple[Figure, Any]:
    fig = Figure(figsize=(width / 100, height / 100), dpi=100)
    fig.patch.set_facecolor("white")
    ax = fig.add_axes((0.02, 0.08, 0.96, 0.82))
    ax.set_axis_off()
    return fig, ax


def _frame(ax, box: tuple[float, float, float, float]) -> None:
    """Equal distances in both directions: a degree of longitude is cos(latitude) of one of latitude."""
    minx, miny, maxx, maxy = box
    pad_x, pad_y = (maxx - minx) * 0.03 or 0.01, (maxy - miny) * 0.03 or 0.01
    ax.set_xlim(minx - pad_x, maxx + pad_x)
    ax.set_ylim(miny - pad_y, maxy + pad_y)
    ax.set_aspect(1 / math.cos(math.radians((miny + maxy) / 2)), adjustable="box")


def _rings(geoms: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Each polygon part's exterior ring, and which input geometry it came from."""
    parts, index = shapely.get_parts(geoms, return_index=True)
    rings = shapely.get_exterior_ring(parts)
    coords, ring_index = shapely.get_coordinates(rings, return_index=True)
    bounds = np.flatnonzero(np.diff(ring_index)) + 1
    return np.split(coords, bounds), index[np.unique(ring_index)]


def _scale_bar(ax, box: tuple[float, float, float, float]) -> None:
    """A bar of a round length, about a fifth of the width, at the lower left."""
    minx, miny, maxx, maxy = box
    lat = (miny + maxy) / 2
    metres_per_degree = 111_320 * math.cos(math.radians(lat))
    target = (maxx - minx) * metres_per_degree / 5
    length = 10 ** math.floor(math.log10(target))
    for step in (5, 2, 1):
        if step * length <= target:
            length *= step
            break
    x0, y0 = minx, miny - (maxy - miny) * 0.01
    x1 = x0 + length / metres_per_degree
    ax.plot([x0, x1], [y0, y0], color="black", linewidth=3, solid_capstyle="butt")
    label = f"{length / 1000:g} 公里" if length >= 1000 else f"{length:g} 米"
    ax.text((x0 + x1) / 2, y0, label, ha="center", va="bottom", fontsize=9, family=FONT)


def _decorate(fig, ax, box, title: str, subtitle: str) -> None:
    fig.text(0.02, 0.965, title, fontsize=16, weight="bold", family=FONT, va="top")
    fig.text(0.02, 0.915, subtitle, fontsize=10, family=FONT, va="top", color="#424242")
    fig.text(0.975, 0.955, "N\n↑", fontsize=14, ha="center", va="top", family=FONT, weight="bold")
    _scale_bar(ax, box)


def _png(fig: Figure) -> bytes:
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=100)
    return out.getvalue()


def render_risk_map(
    cells: list[dict[str, Any]],
    box: tuple[float, float, float, float],
    *,
    width: int,
    height: int,
    title: str,
    at: datetime | None,
) -> bytes:
    """The four-colour map of CELLS ({wkb, colour}) framed on BOX, as PNG bytes."""
    fig, ax = _figure(width, height)
    _frame(ax, box)
    geoms = shapely.from_wkb([bytes(c["wkb"]) for c in cells]) if cells else np.array([], dtype=object)
    colours = np.array([c["colour"] for c in cells])
    if len(geoms):
        rings, owner = _rings(geoms)
        faces = [COLOURS.get(colours[i], "#9e9e9e") for i in owner]
        ax.add_collection(PolyCollection(rings, facecolors=faces, edgecolors="white", linewidths=0.15))
    counts = {c: int((colours == c).sum()) for c in COLOURS}
    handles = [Patch(facecolor=COLOURS[c], label=f"{COLOUR_NAMES[c]}  {counts[c]:,}") for c in COLOURS]
    ax.legend(handles=handles, loc="lower right", prop={"family": FONT, "size": 10}, framealpha=0.9)
    when = (at or datetime.now(UTC)).astimezone(CHINA).strftime("%Y-%m-%d %H:%M")
    _decorate(
        fig, ax, box, title, f"{'截至' if at is None else '历史'} {when}（北京时间） · {len(cells):,} 个网格"
    )
    return _png(fig)


def render_warning(row: dict[str, Any], cells: list[dict[str, Any]], *, width: int, height: int) -> bytes:
    """A warning's area over the four-colour map of its cells, its orders as points coloured by status."""
    box = (row["minx"], row["miny"], row["maxx"], row["maxy"])
    fig, ax = _figure(width, height)
    _frame(ax, box)
    if cells:
        geoms = shapely.from_wkb([bytes(c["wkb"]) for c in cells])
        rings, owner = _rings(geoms)
        faces = [COLOURS.get(cells[i]["colour"], "#9e9e9e") for i in owner]
        ax.add_collection(
            PolyCollection(rings, facecolors=faces, edgecolors="white", linewidths=0.1, alpha=0.35)
        )
    area = shapely.from_wkb(bytes(row["area"]))
    rings, _ = _rings(np.array([area], dtype=object))
    edge = COLOURS.get(row["level"], "#c62828")
    ax.add_collection(
        PolyCollection(rings, facecolors="none", edgecolors=edge, linewidths=2.5, linestyles="--")
    )
    statuses = np.array(row["statuses"])
    handles = []
    for status, (colour, name) in ORDER_COLOURS.items():
        mine = statuses == status
        if mine.any():
            xs, ys = np.array(row["xs"])[mine], np.array(row["ys"])[mine]
            ax.scatter(xs, ys, s=18, c=colour, edgecolors="white", linewidths=0.6, zorder=3)
        handles.append(Patch(facecolor=colour, label=f"{name}  {int(mine.sum()):,}"))
    ax.legend(handles=handles, loc="lower right", prop={"family": FONT, "size": 10}, framealpha=0.9)
    when = datetime.now(UTC).astimezone(CHINA).strftime("%Y-%m-%d %H:%M")
    _decorate(
        fig, ax, box, row["headline"], f"{row['city']} · 响应工单 {len(statuses):,} 张 · {when}（北京时间）"
    )
    return _png(fig)
