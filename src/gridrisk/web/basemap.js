/* gridrisk web map: the configured basemap (GRIDRISK_BASEMAP_*, read from web/config.json) under the
   overlays. None by default, so the page works offline on an empty background. XYZ raster tiles in
   WGS 84 (Tianditu's CGCS2000 is WGS 84 within centimetres) are drawn as they are. GCJ-02 tiles
   (Amap, Tencent) are warped onto WGS 84 tile by tile in the page, so everything else — the
   overlays, a GPS fix, the coordinates sent to the API, the exported image's bbox — stays true. */
(() => {
  'use strict';

  const BACKGROUND = { id: 'background', type: 'background', paint: { 'background-color': '#eef1f4' } };

  // GCJ-02 forward offset: the published formula on the Krasovsky ellipsoid, as geometry/gcj02.py.
  const A = 6378245.0;
  const EE = 0.00669342162296594323;

  function gcj02(lon, lat) {
    const x = lon - 105.0;
    const y = lat - 35.0;
    const PI = Math.PI;
    let dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
    dlat += ((20.0 * Math.sin(6.0 * x * PI) + 20.0 * Math.sin(2.0 * x * PI)) * 2.0) / 3.0;
    dlat += ((20.0 * Math.sin(y * PI) + 40.0 * Math.sin((y / 3.0) * PI)) * 2.0) / 3.0;
    dlat += ((160.0 * Math.sin((y / 12.0) * PI) + 320.0 * Math.sin((y * PI) / 30.0)) * 2.0) / 3.0;
    let dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
    dlon += ((20.0 * Math.sin(6.0 * x * PI) + 20.0 * Math.sin(2.0 * x * PI)) * 2.0) / 3.0;
    dlon += ((20.0 * Math.sin(x * PI) + 40.0 * Math.sin((x / 3.0) * PI)) * 2.0) / 3.0;
    dlon += ((150.0 * Math.sin((x / 12.0) * PI) + 300.0 * Math.sin((x / 30.0) * PI)) * 2.0) / 3.0;
    const radlat = (lat / 180.0) * PI;
    const magic = 1.0 - EE * Math.sin(radlat) ** 2;
    const sqrtmagic = Math.sqrt(magic);
    dlat = (dlat * 180.0) / (((A * (1.0 - EE)) / (magic * sqrtmagic)) * PI);
    dlon = (dlon * 180.0) / ((A / sqrtmagic) * Math.cos(radlat) * PI);
    return [lon + dlon, lat + dlat];
  }

  /** Web Mercator pixel of lon/lat at zoom Z for SIZE-pixel tiles, and back. */
  function toPixel(lon, lat, z, size) {
    const n = size * 2 ** z;
    const s = Math.asinh(Math.tan((lat * Math.PI) / 180));
    return [((lon + 180) / 360) * n, ((1 - s / Math.PI) / 2) * n];
  }

  function toLonLat(px, py, z, size) {
    const n = size * 2 ** z;
    const lat = (Math.atan(Math.sinh(Math.PI * (1 - (2 * py) / n))) * 180) / Math.PI;
    return [(px / n) * 360 - 180, lat];
  }

  const fill = (template, z, x, y) => template.replace('{z}', z).replace('{x}', x).replace('{y}', y);

  async function loadImage(url, signal) {
    const response = await fetch(url, { signal, mode: 'cors', credentials: 'omit' });
    if (!response.ok) return null; // outside the provider's coverage: leave it blank
    return createImageBitmap(await response.blob());
  }

  /** WGS 84 tile Z/X/Y drawn from the GCJ-02 tiles of TEMPLATE. The GCJ-02 offset (about 500 m
      around Nanjing) is smooth: across one tile it is an affine map to within 0.3 px at every zoom
      (an affine map fixed by three corners of the tile; measured against the exact transform over
      the city), so each tile is one canvas transform of the two to four source tiles it covers. */
  async function warpTile(template, z, x, y, size, signal) {
    const corner = (u, v) => {
      const [lon, lat] = toLonLat(x * size + u, y * size + v, z, size);
      const [glon, glat] = gcj02(lon, lat);
      return toPixel(glon, glat, z, size);
    };
    const o = corner(0, 0);
    const ex = corner(size, 0);
    const ey = corner(0, size);
    const far = corner(size, size);
    // Source pixel S = o + [a c; b d]·(u, v) for a destination pixel (u, v).
    const a = (ex[0] - o[0]) / size;
    const b = (ex[1] - o[1]) / size;
    const c = (ey[0] - o[0]) / size;
    const d = (ey[1] - o[1]) / size;
    const det = a * d - b * c;
    const xs = [o[0], ex[0], ey[0], far[0]];
    const ys = [o[1], ex[1], ey[1], far[1]];
    const last = 2 ** z - 1;
    const tx0 = Math.max(0, Math.floor(Math.min(...xs) / size));
    const tx1 = Math.min(last, Math.floor(Math.max(...xs) / size));
    const ty0 = Math.max(0, Math.floor(Math.min(...ys) / size));
    const ty1 = Math.min(last, Math.floor(Math.max(...ys) / size));
    const jobs = [];
    for (let tx = tx0; tx <= tx1; tx += 1) {
      for (let ty = ty0; ty <= ty1; ty += 1) {
        jobs.push(loadImage(fill(template, z, tx, ty), signal).then((img) => [tx, ty, img]));
      }
    }
    const images = await Promise.all(jobs);
    const canvas = new OffscreenCanvas(size, size);
    const g = canvas.getContext('2d');
    // Destination = M·(S − o) with M the inverse of [a c; b d]; positions relative to o keep the
    // numbers small (global pixels at z18 are in the tens of millions).
    g.setTransform(d / det, -b / det, -c / det, a / det, 0, 0);
    for (const [tx, ty, img] of images) {
      if (img) g.drawImage(img, tx * size - o[0], ty * size - o[1], size, size);
    }
    return canvas.transferToImageBitmap();
  }

  let registered = false;

  function registerGcj02(urls, size) {
    if (registered) return;
    registered = true;
    // gcj02://<layer index>/<z>/<x>/<y>: one WGS 84 tile of the configured GCJ-02 template.
    maplibregl.addProtocol('gcj02', async (params, abort) => {
      const [index, z, x, y] = params.url.slice('gcj02://'.length).split('/').map(Number);
      return { data: await warpTile(urls[index], z, x, y, size, abort.signal) };
    });
  }

  /** The map's initial style: the background, and the basemap's raster layers when configured;
      a MapLibre style URL as it is (the overlays go on top of it). */
  function style(config) {
    const bm = config?.basemap;
    if (bm && bm.kind === 'style') return bm.urls[0];
    const base = { version: 8, sources: {}, layers: [BACKGROUND] };
    if (!bm) return base;
    if (bm.coords === 'GCJ-02') registerGcj02(bm.urls, bm.tile_size);
    bm.urls.forEach((url, i) => {
      const source = {
        type: 'raster',
        tiles: [bm.coords === 'GCJ-02' ? `gcj02://${i}/{z}/{x}/{y}` : url],
        tileSize: bm.tile_size,
        maxzoom: bm.max_zoom,
      };
      if (i === 0 && bm.attribution) source.attribution = bm.attribution;
      base.sources[`basemap-${i}`] = source;
      base.layers.push({ id: `basemap-${i}`, type: 'raster', source: `basemap-${i}` });
    });
    return base;
  }

  window.gridriskBasemap = { style, gcj02 };
})();
