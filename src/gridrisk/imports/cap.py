"""CAP 1.2 (OASIS Common Alerting Protocol) warnings, parsed safely into a WarningSpec.

Public warning systems, China's national early-warning release system included, publish in CAP.
What gridrisk takes from an <alert>:
- identifier, sender, sent, msgType (Alert / Update / Cancel) and references, whose identifiers
  tie an Update or Cancel to the warning it changes; status must be Actual (tests and drills
  are not acted on);
- from one <info> (the first in Chinese if any, else the first): event / eventCode → hazard type,
  severity → level (Extreme red, Severe orange, Moderate yellow, Minor blue), onset (else
  effective, else sent) → valid from, expires → valid until, headline, description, instruction;
- every <area> of that info (their union): <polygon> ("lat,lon lat,lon …", latitude FIRST,
  closed), <circle> ("lat,lon radius-km", a 72-gon on the WGS 84 ellipsoid), and, for an area
  block without either, its <geocode> values that are a loaded district's code (or the city's).
The XML goes through defusedxml: DTDs, entity expansion and external references are refused.
"""

from __future__ import annotations

import re
from datetime import datetime
from xml.etree.ElementTree import Element, ParseError

import orjson
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from pyproj import Geod

from gridrisk.models.warnings import HAZARD_TYPES, AreaSpec, WarningSpec
from gridrisk.services.warning_targeting import WarningInputError

NAMESPACES = ("urn:oasis:names:tc:emergency:cap:1.2", "urn:oasis:names:tc:emergency:cap:1.1")
SEVERITY_LEVELS = {"Extreme": "red", "Severe": "orange", "Moderate": "yellow", "Minor": "blue"}
CIRCLE_VERTICES = 72
MAX_RADIUS_KM = 500
_GEOD = Geod(ellps="WGS84")

# Event names (English and Chinese, as issuers write them) for each hazard type. An event is
# normalised first: lower case, colour words and "warning"/"预警信号" and the like removed.
HAZARD_NAMES: dict[str, tuple[str, ...]] = {
    "rainstorm": ("rainstorm", "heavy rain", "torrential rain", "rain", "暴雨", "大暴雨", "强降雨"),
    "typhoon": ("typhoon", "tropical cyclone", "tropical storm", "hurricane", "台风", "热带气旋"),
    "gale": ("gale", "strong wind", "high wind", "wind", "大风"),
    "thunderstorm": (
        "thunderstorm",
        "severe thunderstorm",
        "lightning",
        "雷电",
        "雷暴",
        "雷雨大风",
        "强对流",
    ),
    "heat": ("heat", "heat wave", "heatwave", "high temperature", "extreme heat", "高温"),
    "cold_wave": ("cold wave", "cold", "coldwave", "寒潮", "低温"),
    "snow": ("snow", "snowstorm", "blizzard", "heavy snow", "暴雪", "大雪"),
    "fog": ("fog", "dense fog", "大雾", "雾"),
    "hail": ("hail", "hailstorm", "冰雹"),
    "flood": ("flood", "flash flood", "flooding", "洪水", "山洪", "内涝", "城市内涝"),
    "geological": (
        "geological",
        "geological hazard",
        "landslide",
        "debris flow",
        "mudslide",
        "地质灾害",
        "地质灾害气象风险",
        "滑坡",
        "泥石流",
        "崩塌",
    ),
    "earthquake": ("earthquake", "地震"),
    "other": ("other",),
}
_BY_NAME = {name: hazard for hazard, names in HAZARD_NAMES.items() for name in names}
_BY_NAME.update({h: h for h in HAZARD_TYPES})
_NOISE = re.compile(
    r"(红色|橙色|黄色|蓝色|预警信号|预警|信号|警报|\b(red|orange|yellow|blue|warning|warnings|alert|watch|advisory)\b)"
)


class CapError(WarningInputError):
    """The document is not a CAP warning gridrisk can act on; FIELD names the element."""


def hazard_of(event: str | None, codes: list[str]) -> str | None:
    """The hazard type an event name or one of its eventCode values names, or None."""
    for candidate in [*codes, event or ""]:
        name = " ".join(_NOISE.sub(" ", candidate.lower().replace("_", " ")).split())
        if name in _BY_NAME:
            return _BY_NAME[name]
        compact = name.replace(" ", "")
        if compact in _BY_NAME:
            return _BY_NAME[compact]
    return None


def _local(tag: str) -> tuple[str | None, str]:
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        return ns, local
    return None, tag


class _Doc:
    """Namespace-aware access to one CAP document's elements."""

    def __init__(self, root: Element, ns: str) -> None:
        self.root = root
        self.ns = ns

    def all(self, el: Element, tag: str) -> list[Element]:
        return el.findall(f"{{{self.ns}}}{tag}")

    def text(self, el: Element, tag: str) -> str | None:
        found = el.find(f"{{{self.ns}}}{tag}")
        if found is None or found.text is None:
            return None
        value = found.text.strip()
        return value or None

    def required(self, el: Element, tag: str, field: str) -> str:
        value = self.text(el, tag)
        if value is None:
            raise CapError(field, f"The CAP <{tag}> element is missing or empty.")
        return value


def _time(value: str | None, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise CapError(field, f"<{field.split('.')[-1]}> '{value}' is not a CAP date-time.") from exc
    if parsed.tzinfo is None:
        raise CapError(field, f"<{field.split('.')[-1]}> '{value}' has no time zone (CAP requires one).")
    return parsed


def _pair(text: str, field: str) -> tuple[float, float]:
    """A CAP "lat,lon" pair as (lon, lat)."""
    try:
        lat_s, lon_s = text.split(",")
        lat, lon = float(lat_s), float(lon_s)
    except ValueError as exc:
        raise CapError(field, f"'{text}' is not a CAP coordinate pair (latitude,longitude).") from exc
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise CapError(field, f"'{text}' is out of range (CAP pairs are latitude,longitude: latitude first).")
    return lon, lat


def polygon_ring(text: str, field: str = "info.area.polygon") -> list[list[float]]:
    """A CAP polygon ("lat,lon lat,lon …", closed, ≥ 4 pairs) as a GeoJSON ring of [lon, lat]."""
    pairs = [_pair(p, field) for p in text.split()]
    if len(pairs) < 4:
        raise CapError(field, f"A CAP polygon needs at least 4 coordinate pairs; this one has {len(pairs)}.")
    if pairs[0] != pairs[-1]:
        raise CapError(field, "A CAP polygon must be closed: its first and last pairs must be the same.")
    return [[lon, lat] for lon, lat in pairs]


def circle_ring(text: str, field: str = "info.area.circle") -> list[list[float]]:
    """A CAP circle ("lat,lon radius", radius in km) as a closed ring on the WGS 84 ellipsoid."""
    parts = text.split()
    if len(parts) != 2:
        raise CapError(field, f"'{text}' is not a CAP circle (\"latitude,longitude radius-km\").")
    lon, lat = _pair(parts[0], field)
    try:
        radius_km = float(parts[1])
    except ValueError as exc:
        raise CapError(field, f"The circle's radius '{parts[1]}' is not a number (kilometres).") from exc
    if not (0 < radius_km <= MAX_RADIUS_KM):
        raise CapError(field, f"The circle's radius must be above 0 and at most {MAX_RADIUS_KM} km.")
    azimuths = [i * 360 / CIRCLE_VERTICES for i in range(CIRCLE_VERTICES)]
    lons, lats, _ = _GEOD.fwd(
        [lon] * CIRCLE_VERTICES, [lat] * CIRCLE_VERTICES, azimuths, [radius_km * 1000] * CIRCLE_VERTICES
    )
    # Clockwise azimuths give a clockwise ring; GeoJSON exteriors run counter-clockwise.
    ring = [[round(x, 7), round(y, 7)] for x, y in zip(lons, lats, strict=True)][::-1]
    return [*ring, ring[0]]


def _pick_info(doc: _Doc) -> Element | None:
    infos = doc.all(doc.root, "info")
    for info in infos:
        if (doc.text(info, "language") or "").lower().startswith("zh"):
            return info
    return infos[0] if infos else None


def parse_cap(data: bytes | str, *, unknown_hazard: str | None = None) -> WarningSpec:
    """Parse a CAP 1.2 (or 1.1) alert into a WarningSpec; CapError names what gridrisk cannot use.

    UNKNOWN_HAZARD (e.g. "other") is taken for an event no hazard type matches; without it such an
    event is refused, so that no warning is quietly under-targeted.
    """
    try:
        root = fromstring(data)
    except DefusedXmlException as exc:
        raise CapError("body", f"XML with a DTD or entities is refused ({exc.__class__.__name__}).") from exc
    except ParseError as exc:
        raise CapError("body", f"The body is not well-formed XML: {exc}.") from exc
    ns, local = _local(root.tag)
    if local != "alert" or ns not in NAMESPACES:
        raise CapError("body", f"Not a CAP alert: the root element is <{local}> in namespace {ns or 'none'}.")
    doc = _Doc(root, ns)
    identifier = doc.required(root, "identifier", "identifier")
    if re.search(r"[\s,<&]", identifier) or len(identifier) > 200:
        raise CapError(
            "identifier", "A CAP identifier has no spaces, commas, < or &, and at most 200 characters."
        )
    sender = doc.required(root, "sender", "sender")
    sent = _time(doc.required(root, "sent", "sent"), "sent")
    status = doc.required(root, "status", "status")
    if status != "Actual":
        raise CapError("status", f"status '{status}' is not an actual warning; gridrisk acts on Actual only.")
    msg_type = doc.required(root, "msgType", "msgType")
    if msg_type not in ("Alert", "Update", "Cancel"):
        raise CapError("msgType", f"msgType '{msg_type}' is not acted on (Alert, Update or Cancel are).")
    references = []
    for ref in (doc.text(root, "references") or "").split():
        parts = ref.split(",")
        if len(parts) != 3 or not parts[1]:
            raise CapError("references", f"'{ref}' is not a CAP reference (sender,identifier,sent).")
        references.append(parts[1])
    if msg_type in ("Update", "Cancel") and not references:
        raise CapError("references", f"A CAP {msg_type} must name the message(s) it changes in <references>.")
    note = doc.text(root, "note")
    spec = WarningSpec(
        identifier=identifier,
        msg_type=msg_type,
        source="cap",
        sent=sent,
        sender=sender,
        references=references,
        note=note,
    )
    info = _pick_info(doc)
    if msg_type == "Cancel":
        if info is not None:
            spec.headline = doc.text(info, "headline")
        return spec
    if info is None:
        raise CapError("info", "The alert has no <info>: nothing says what the warning is.")
    event = doc.text(info, "event")
    codes = [v for code in doc.all(info, "eventCode") if (v := doc.text(code, "value"))]
    hazard = hazard_of(event, codes)
    if hazard is None:
        if unknown_hazard is None:
            known = ", ".join(HAZARD_TYPES)
            coded = f" (eventCode {', '.join(codes)})" if codes else ""
            raise CapError(
                "info.event",
                f"The event '{event}'{coded} is not a hazard type "
                f"gridrisk knows ({known}). Post it with ?unknown_hazard=other to accept it as 'other'.",
                event=event,
                event_codes=codes,
            )
        hazard = unknown_hazard
    severity = doc.text(info, "severity")
    if severity not in SEVERITY_LEVELS:
        raise CapError(
            "info.severity",
            f"severity '{severity}' has no warning level; CAP Extreme, Severe, Moderate and Minor map to "
            "red, orange, yellow and blue.",
        )
    spec.hazard_type = hazard
    spec.level = SEVERITY_LEVELS[severity]
    spec.valid_from = (
        _time(doc.text(info, "onset"), "info.onset")
        or _time(doc.text(info, "effective"), "info.effective")
        or sent
    )
    spec.valid_until = _time(doc.text(info, "expires"), "info.expires")
    if spec.valid_until is None:
        raise CapError("info.expires", "The warning has no <expires>: gridrisk needs to know when it ends.")
    spec.headline = (doc.text(info, "headline") or f"{event or hazard} ({severity})")[:500]
    spec.description = (doc.text(info, "description") or "")[:20_000]
    spec.instruction = doc.text(info, "instruction")
    spec.area = _area(doc, info)
    return spec


def _area(doc: _Doc, info: Element) -> AreaSpec:
    """Every <area> of the info as one AreaSpec: polygons and circles as GeoJSON, geocodes as codes."""
    polygons: list[str] = []
    descs: list[str] = []
    geocodes: list[str] = []
    described: list[str] = []
    n_poly = n_circle = 0
    areas = doc.all(info, "area")
    if not areas:
        raise CapError("info.area", "The warning has no <area>.")
    for area in areas:
        before = len(polygons)
        if desc := doc.text(area, "areaDesc"):
            descs.append(desc)
        for el in doc.all(area, "polygon"):
            if el.text and el.text.strip():
                ring = polygon_ring(el.text)
                polygons.append(orjson.dumps({"type": "Polygon", "coordinates": [ring]}).decode())
                n_poly += 1
        for el in doc.all(area, "circle"):
            if el.text and el.text.strip():
                polygons.append(
                    orjson.dumps({"type": "Polygon", "coordinates": [circle_ring(el.text)]}).decode()
                )
                n_circle += 1
        codes = [v for code in doc.all(area, "geocode") if (v := doc.text(code, "value"))]
        if len(polygons) == before:
            # Shapes are the precise area; a block's geocodes place it only when it has none (a
            # district code alongside a rain band's polygon must not widen it to the whole district).
            geocodes.extend(codes)
        else:
            described.extend(codes)
    if not polygons and not geocodes:
        raise CapError("info.area", "The <area> has no polygon, circle or geocode: gridrisk cannot place it.")
    spec = {
        "cap": {
            "areaDesc": descs,
            "polygons": n_poly,
            "circles": n_circle,
            "geocodes": geocodes,
            "geocodes_beside_shapes": described,
        }
    }
    return AreaSpec(field="info.area", spec=spec, polygons=polygons, geocodes=list(dict.fromkeys(geocodes)))
