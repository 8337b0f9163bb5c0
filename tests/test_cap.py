"""CAP 1.2 input: parsing (latitude-first polygons, circles, severities, events, references), refusal
of what cannot be acted on, and CAP Alert / Update / Cancel through POST /warnings."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
import shapely
from conftest import assert_problem, bearer
from pyproj import Geod
from test_warnings import (
    RAIN_HAZARDS,
    RAIN_SOURCES,
    T0,
    counts,
    expected_targets,
    live,
    orders,
    seed_shelters,
    seed_targets,
)

from gridrisk.imports.cap import CapError, circle_ring, hazard_of, parse_cap, polygon_ring

NS = "urn:oasis:names:tc:emergency:cap:1.2"
# The AREA polygon of test_warnings as CAP writes it: latitude first.
POLYGON = "31.99,118.76 32.00,118.86 32.05,118.80 32.10,118.88 32.09,118.77 31.99,118.76"
POLYGON_GEOJSON = {
    "type": "Polygon",
    "coordinates": [
        [[118.76, 31.99], [118.86, 32.00], [118.80, 32.05], [118.88, 32.10], [118.77, 32.09], [118.76, 31.99]]
    ],
}


def cap(
    identifier: str,
    *,
    msg_type: str = "Alert",
    status: str = "Actual",
    severity: str = "Extreme",
    event: str = "暴雨红色预警",
    codes: tuple[str, ...] = (),
    polygons: tuple[str, ...] = (POLYGON,),
    circles: tuple[str, ...] = (),
    geocodes: tuple[str, ...] = (),
    references: str | None = None,
    sent_minutes: int = 0,
    expires_hours: float = 12,
    with_info: bool = True,
    extra_info: str = "",
) -> str:
    sent = (T0 + timedelta(minutes=sent_minutes)).isoformat()
    expires = (T0 + timedelta(hours=expires_hours)).isoformat()
    area = "".join(f"<polygon>{p}</polygon>" for p in polygons)
    area += "".join(f"<circle>{c}</circle>" for c in circles)
    area += "".join(
        f"<geocode><valueName>行政区划代码</valueName><value>{g}</value></geocode>" for g in geocodes
    )
    code_xml = "".join(
        f"<eventCode><valueName>预警类型</valueName><value>{c}</value></eventCode>" for c in codes
    )
    info = (
        f"""
      <info>
        <language>zh-CN</language>
        <category>Met</category>
        <event>{event}</event>
        <urgency>Immediate</urgency>
        <severity>{severity}</severity>
        <certainty>Likely</certainty>
        {code_xml}
        <onset>{(T0 - timedelta(minutes=30)).isoformat()}</onset>
        <expires>{expires}</expires>
        <senderName>南京市气象台</senderName>
        <headline>南京市气象台发布暴雨预警</headline>
        <description>预计未来3小时内主城区降水量将达100毫米以上。</description>
        <instruction>停止集会、停课、停业。</instruction>
        <area><areaDesc>南京市主城区</areaDesc>{area}</area>
      </info>"""
        if with_info
        else ""
    )
    refs = f"<references>{references}</references>" if references else ""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
    <alert xmlns="{NS}">
      <identifier>{identifier}</identifier>
      <sender>nj-meteo@cma.gov.cn</sender>
      <sent>{sent}</sent>
      <status>{status}</status>
      <msgType>{msg_type}</msgType>
      <scope>Public</scope>
      {refs}
      {extra_info}{info}
    </alert>"""


def post_cap(client, key: str, xml: str, query: str = ""):
    return client.post(
        f"/warnings{query}",
        content=xml.encode(),
        headers={**bearer(key), "content-type": "application/cap+xml"},
    )


# ---------------------------------------------------------------------------------------------
# Parsing


def test_polygon_pairs_are_latitude_first():
    ring = polygon_ring("32.0,118.8 32.1,118.8 32.1,118.9 32.0,118.8")
    assert ring == [[118.8, 32.0], [118.8, 32.1], [118.9, 32.1], [118.8, 32.0]]
    spec = parse_cap(cap("C-1"))
    assert spec.area.polygons and shapely.from_geojson(spec.area.polygons[0]).equals(
        shapely.geometry.shape(POLYGON_GEOJSON)
    )
    assert (spec.identifier, spec.msg_type, spec.source, spec.hazard_type, spec.level) == (
        "C-1",
        "Alert",
        "cap",
        "rainstorm",
        "red",
    )
    assert spec.valid_from == T0 - timedelta(minutes=30) and spec.valid_until == T0 + timedelta(hours=12)
    assert spec.sender == "nj-meteo@cma.gov.cn" and spec.instruction.startswith("停止")


def test_circle_is_a_ring_of_the_radius_on_the_ellipsoid():
    ring = circle_ring("32.05,118.80 2.5")
    geod = Geod(ellps="WGS84")
    assert ring[0] == ring[-1] and len(ring) == 73
    for lon, lat in ring:
        assert abs(geod.inv(118.80, 32.05, lon, lat)[2] - 2500) < 0.5
    assert shapely.Polygon(ring).exterior.is_ccw  # GeoJSON's exterior orientation


@pytest.mark.parametrize(
    ("severity", "level"),
    [("Extreme", "red"), ("Severe", "orange"), ("Moderate", "yellow"), ("Minor", "blue")],
)
def test_severity_maps_to_level(severity, level):
    assert parse_cap(cap("C-S", severity=severity)).level == level


@pytest.mark.parametrize(
    ("event", "codes", "hazard"),
    [
        ("暴雨红色预警", (), "rainstorm"),
        ("暴雨蓝色预警信号", (), "rainstorm"),
        ("Red Rainstorm Warning", (), "rainstorm"),
        ("台风橙色预警", (), "typhoon"),
        ("大风黄色预警", (), "gale"),
        ("雷雨大风黄色预警", (), "thunderstorm"),
        ("高温红色预警", (), "heat"),
        ("寒潮蓝色预警", (), "cold_wave"),
        ("暴雪橙色预警", (), "snow"),
        ("大雾黄色预警", (), "fog"),
        ("冰雹橙色预警", (), "hail"),
        ("Flash Flood Warning", (), "flood"),
        ("地质灾害气象风险预警", (), "geological"),
        ("Earthquake", (), "earthquake"),
        ("Met warning", ("heat",), "heat"),
        ("Heat Wave Advisory", (), "heat"),
    ],
)
def test_events_map_to_hazard_types(event, codes, hazard):
    assert hazard_of(event, list(codes)) == hazard
    assert parse_cap(cap("C-E", event=event, codes=codes)).hazard_type == hazard


def test_unknown_hazard_is_refused_by_name_unless_taken_as_other():
    with pytest.raises(CapError) as err:
        parse_cap(cap("C-U", event="沙尘暴黄色预警", codes=("11B07",)))
    assert (
        err.value.field == "info.event"
        and "沙尘暴黄色预警" in err.value.message
        and "11B07" in err.value.message
    )
    assert parse_cap(cap("C-U", event="沙尘暴黄色预警"), unknown_hazard="other").hazard_type == "other"


def test_the_chinese_info_is_preferred():
    english = """<info><language>en-US</language><event>Heat</event><severity>Minor</severity>
      <expires>2099-01-01T00:00:00+08:00</expires><area><areaDesc>x</areaDesc>
      <polygon>32.0,118.8 32.1,118.8 32.1,118.9 32.0,118.8</polygon></area></info>"""
    spec = parse_cap(cap("C-L", extra_info=english))
    assert spec.hazard_type == "rainstorm" and spec.level == "red"


BAD_DOCS = [
    (
        cap("B-1", polygons=("31.99,118.76 32.00,118.86 32.05,118.80 32.09,118.77",)),
        "info.area.polygon",
        "closed",
    ),
    (cap("B-2", polygons=("31.99,118.76 32.00,118.86 31.99,118.76",)), "info.area.polygon", "at least 4"),
    (
        cap("B-3", polygons=("118.76,31.99 118.86,32.00 118.80,32.05 118.76,31.99",)),
        "info.area.polygon",
        "latitude first",
    ),
    (cap("B-4", polygons=(), circles=("32.05,118.8 0",)), "info.area.circle", "radius"),
    (cap("B-5", polygons=(), circles=("32.05 118.8 3",)), "info.area.circle", "circle"),
    (cap("B-6", status="Exercise"), "status", "Actual"),
    (cap("B-7", msg_type="Ack"), "msgType", "Ack"),
    (cap("B-8", severity="Unknown"), "info.severity", "Unknown"),
    (cap("B-9", msg_type="Update"), "references", "references"),
    (cap("B-10", with_info=False), "info", "<info>"),
    (cap("B-11", polygons=()), "info.area", "polygon, circle or geocode"),
    (cap("B-12").replace("<sent>", "<sent>yesterday").replace("</sent>", "x</sent>"), "sent", "date-time"),
    (
        cap("B-13").replace(f"<expires>{(T0 + timedelta(hours=12)).isoformat()}</expires>", ""),
        "info.expires",
        "expires",
    ),
    ("<alert><identifier>x</identifier></alert>", "body", "namespace"),
    ("<alert xmlns=", "body", "well-formed"),
    (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
        f'<alert xmlns="{NS}"><identifier>&lol2;</identifier></alert>',
        "body",
        "refused",
    ),
]


@pytest.mark.parametrize(("doc", "field", "says"), BAD_DOCS)
def test_what_cannot_be_acted_on_is_refused_naming_it(doc, field, says):
    with pytest.raises(CapError) as err:
        parse_cap(doc)
    assert err.value.field == field and says.lower() in err.value.message.lower(), err.value.message


# ---------------------------------------------------------------------------------------------
# Through the API


@pytest.fixture
def targets(city_db_url):
    seed_targets(city_db_url)
    seed_shelters(city_db_url)
    return city_db_url


def test_cap_alert_update_cancel_through_the_api(city_client, targets, city_keys):
    url, op = targets, city_keys["operator"]
    r = post_cap(city_client, op, cap("CAP-1", severity="Moderate"))
    assert r.status_code == 201, r.text
    w = r.json()
    assert (w["hazard_type"], w["level"], w["source"], w["identifier"]) == (
        "rainstorm",
        "yellow",
        "cap",
        "CAP-1",
    )
    assert w["area_spec"]["cap"]["polygons"] == 1 and w["area_spec"]["cap"]["areaDesc"] == ["南京市主城区"]
    want = expected_targets(url, POLYGON_GEOJSON, RAIN_HAZARDS, RAIN_SOURCES)
    assert live(orders(url, w["id"])) == want and want
    # A CAP Update is a new message naming the first: the same warning, escalated.
    update = cap(
        "CAP-2", msg_type="Update", references=f"nj-meteo@cma.gov.cn,CAP-1,{T0.isoformat()}", sent_minutes=30
    )
    r = post_cap(city_client, op, update)
    assert r.status_code == 200, r.text
    assert r.json()["id"] == w["id"] and r.json()["level"] == "red" and r.json()["last_message"] == "CAP-2"
    assert r.json()["result"]["orders"]["escalated"] == len(want)
    # Re-delivered messages change nothing: the Update again, and the (older) Alert again.
    before = counts(url)
    assert post_cap(city_client, op, update).json()["result"]["applied"] is False
    r = post_cap(city_client, op, cap("CAP-1", severity="Moderate"))
    assert r.status_code == 200 and r.json()["result"]["applied"] is False
    assert "superseded" in r.json()["result"]["note"] and r.json()["level"] == "red"
    assert counts(url) == before
    # An update sent before the current state: 409, nothing written.
    stale = cap(
        "CAP-0", msg_type="Update", references=f"x,CAP-1,{T0.isoformat()}", severity="Minor", sent_minutes=10
    )
    assert_problem(post_cap(city_client, op, stale), 409)
    assert counts(url) == before
    # A Cancel ends it; a Cancel naming nothing known is a 422.
    cancel = cap(
        "CAP-3", msg_type="Cancel", references=f"x,CAP-2,{T0.isoformat()}", sent_minutes=60, with_info=False
    )
    r = post_cap(city_client, op, cancel)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert r.json()["orders"]["by_status"]["cancelled"] == len(want)
    body = assert_problem(
        post_cap(
            city_client, op, cap("CAP-9", msg_type="Cancel", references="x,NOPE,2026-01-01T00:00:00+08:00")
        ),
        422,
    )
    assert body["errors"][0]["field"] == "references"


def test_unknown_hazard_over_the_api(city_client, targets, city_keys):
    before = counts(targets)
    doc = cap("CAP-U", event="沙尘暴黄色预警")
    body = assert_problem(post_cap(city_client, city_keys["operator"], doc), 422)
    assert "沙尘暴黄色预警" in body["detail"] and body["errors"][0]["field"] == "info.event"
    assert counts(targets) == before
    r = post_cap(city_client, city_keys["operator"], doc, "?unknown_hazard=other")
    assert r.status_code == 201 and r.json()["hazard_type"] == "other"
    assert r.json()["orders"]["total"] == 0  # `other` exposes nothing until an admin says what


def test_geocodes_place_an_area_without_shapes(city_client, targets, city_keys):
    url, op = targets, city_keys["operator"]
    r = post_cap(city_client, op, cap("CAP-G", polygons=(), geocodes=("320102", "110105")))
    assert r.status_code == 201, r.text
    w = r.json()
    assert w["affected_cells"]["district"]["count"] == 1
    assert w["area_spec"]["ignored_geocodes"] == ["110105"]
    with psycopg.connect(url) as conn:
        district = conn.execute(
            "SELECT ST_AsGeoJSON(geom)::json FROM cells WHERE layer = 'district' AND code = '320102'"
        ).fetchone()[0]
    assert live(orders(url, w["id"])) == expected_targets(url, district, RAIN_HAZARDS, RAIN_SOURCES)
    # The city's own code (3201xx districts → 320100) covers every district.
    w = post_cap(city_client, op, cap("CAP-CITY", polygons=(), geocodes=("320100",))).json()
    assert w["affected_cells"]["district"]["count"] == 2
    # A block with a polygon keeps to it: its geocodes do not widen it.
    w = post_cap(city_client, op, cap("CAP-PG", geocodes=("320100",))).json()
    assert w["area_spec"]["cap"]["geocodes_beside_shapes"] == ["320100"]
    assert live(orders(url, w["id"])) == expected_targets(url, POLYGON_GEOJSON, RAIN_HAZARDS, RAIN_SOURCES)
    # Only unknown geocodes: nothing to place it by.
    before = counts(url)
    body = assert_problem(post_cap(city_client, op, cap("CAP-X", polygons=(), geocodes=("110105",))), 422)
    assert "110105" in body["detail"]
    assert counts(url) == before


def test_bad_cap_over_the_api_writes_nothing(city_client, targets, city_keys):
    before = counts(targets)
    for doc, field, _ in BAD_DOCS:
        r = post_cap(city_client, city_keys["operator"], doc)
        assert assert_problem(r, 422)["errors"][0]["field"] == field
    # A self-intersecting CAP polygon: PostGIS's reason.
    bowtie = "32.0,118.78 32.08,118.85 32.0,118.85 32.08,118.78 32.0,118.78"
    body = assert_problem(post_cap(city_client, city_keys["operator"], cap("CAP-B", polygons=(bowtie,))), 422)
    assert "Self-intersection" in body["detail"] and body["errors"][0]["field"] == "info.area"
    # Expired already.
    assert_problem(post_cap(city_client, city_keys["operator"], cap("CAP-OLD", expires_hours=-1)), 422)
    assert counts(targets) == before
