"""GCJ-02 ↔ WGS 84 against published point pairs, and the inverse's accuracy over Nanjing."""

import numpy as np
import pytest
import shapely

from gridrisk.geometry.gcj02 import gcj02_to_wgs84, geometry_gcj02_to_wgs84, wgs84_to_gcj02

# (wgs lon, wgs lat, gcj lon, gcj lat) — the test vectors published with eviltransform and
# wandergis/coordtransform, computed by the reference implementations.
KNOWN = [
    (121.5272106, 31.1774276, 121.531541859215, 31.17530398364597),  # Shanghai
    (113.912316, 22.543847, 113.9171764808363, 22.540796131694766),  # Shenzhen
    (116.377817, 39.911954, 116.38404722455657, 39.91334545536069),  # Beijing
    (116.404, 39.915, 116.41024449916938, 39.91640428150164),  # Beijing, coordtransform
]


@pytest.mark.parametrize(("wlon", "wlat", "glon", "glat"), KNOWN)
def test_forward_matches_published_pairs(wlon, wlat, glon, glat):
    lon, lat = wgs84_to_gcj02(wlon, wlat)
    assert lon == pytest.approx(glon, abs=1e-9)
    assert lat == pytest.approx(glat, abs=1e-9)


@pytest.mark.parametrize(("wlon", "wlat", "glon", "glat"), KNOWN)
def test_inverse_recovers_wgs84_well_under_a_metre(wlon, wlat, glon, glat):
    lon, lat = gcj02_to_wgs84(glon, glat)
    # 1e-7° is about 1 cm; the requirement is "well under a metre".
    assert lon == pytest.approx(wlon, abs=1e-7)
    assert lat == pytest.approx(wlat, abs=1e-7)


def test_inverse_is_accurate_over_the_whole_city():
    rng = np.random.default_rng(1)
    lon = rng.uniform(118.35, 119.25, 20_000)
    lat = rng.uniform(31.22, 32.62, 20_000)
    glon, glat = wgs84_to_gcj02(lon, lat)
    # The offset itself is hundreds of metres around Nanjing ...
    offset_m = np.hypot((glon - lon) * 94_000, (glat - lat) * 111_000)
    assert 300 < offset_m.min() and offset_m.max() < 800
    # ... and the iterative inverse undoes it to far better than a millimetre.
    back_lon, back_lat = gcj02_to_wgs84(glon, glat)
    err_m = np.hypot((back_lon - lon) * 94_000, (back_lat - lat) * 111_000)
    assert err_m.max() < 1e-3


def test_geometries_are_converted_vertex_by_vertex():
    square = shapely.box(118.7, 32.0, 118.8, 32.1)
    gcj = shapely.transform(square, lambda c: np.column_stack(wgs84_to_gcj02(c[:, 0], c[:, 1])))
    back = geometry_gcj02_to_wgs84(gcj)
    assert shapely.equals_exact(back, square, tolerance=1e-8)


def test_bd09_round_trips_through_gcj02_within_a_millimetre():
    from gridrisk.geometry.gcj02 import bd09_to_gcj02, bd09_to_wgs84, gcj02_to_bd09, wgs84_to_gcj02

    lon, lat = np.array([118.7969, 118.3, 119.2]), np.array([32.0603, 31.3, 32.6])
    glon, glat = wgs84_to_gcj02(lon, lat)
    blon, blat = gcj02_to_bd09(glon, glat)
    # Baidu's offset is about 0.0065° east and 0.006° north of GCJ-02 (some 600-700 m) in Nanjing.
    assert np.all(np.abs(blon - glon - 0.0065) < 0.001) and np.all(np.abs(blat - glat - 0.006) < 0.001)
    back_lon, back_lat = bd09_to_gcj02(blon, blat)
    assert np.max(np.abs(back_lon - glon)) < 1e-8 and np.max(np.abs(back_lat - glat)) < 1e-8
    wlon, wlat = bd09_to_wgs84(blon, blat)
    assert np.max(np.abs(wlon - lon)) < 1e-8 and np.max(np.abs(wlat - lat)) < 1e-8  # ≈ 1 mm
