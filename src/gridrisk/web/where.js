/* gridrisk web map: "where am I" — the cells at a GPS fix or a typed coordinate, what is in them,
   and the nearest shelters. */

import { $, api, badge, enc, h, label, layerTitle, num, state, t } from './common.js';

// ---------------------------------------------------------------------------------------------
// Where am I

export function cellLine(layerName, cell) {
  const title = layerTitle(layerName);
  if (!cell) return h('li', {}, t('where.noCell', { layer: title }));
  return h('li', { 'data-layer': layerName, 'data-code': cell.code }, `${title}: `, h('strong', {}, cell.code), ' ', badge(cell.colour));
}

export async function whereAmI(lon, lat, { move = true } = {}) {
  const out = $('where-result');
  const map = state.map;
  if (move) {
    if (state.popup) state.popup.remove();
    out.replaceChildren(h('p', { class: 'note' }, t('where.looking')));
  }
  map.getSource('me').setData({ type: 'Point', coordinates: [lon, lat] });
  if (move) map.easeTo({ center: [lon, lat], zoom: Math.max(map.getZoom(), 13) });
  const q = `lon=${lon}&lat=${lat}`;
  const sheltersP = api(`shelters/nearest?${q}&limit=5`).catch((err) => err);
  let here = null;
  try {
    here = await api(`cells/at?${q}`);
  } catch (err) {
    if (err.status !== 404) {
      out.replaceChildren(h('p', { class: 'error' }, err.message));
      return;
    }
  }
  state.where = here ? { lon, lat, cells: here.cells } : null;
  map.setFilter('cells-where', ['==', ['get', 'code'], here?.cells?.[state.layer]?.code ?? '']);

  const parts = [h('p', { class: 'note' }, `${lon.toFixed(6)}, ${lat.toFixed(6)}`)];
  const mine = here?.cells?.[state.layer];
  if (!here) {
    parts.push(h('p', { class: 'error' }, t('where.outside')));
  } else {
    const district = here.admin?.district;
    parts.push(
      h('h3', {}, t('where.cellsHere')),
      h('ul', { class: 'where-cells' }, Object.entries(here.cells).map(([l, c]) => cellLine(l, c))),
      district ? h('p', {}, t('where.district', { name: district.name, code: district.code })) : null,
    );
    if (mine) {
      const workers = mine.workers || [];
      parts.push(
        h('p', {}, t('where.counted', { code: mine.code }), ['red', 'orange', 'yellow', 'blue'].map((c) => `${label('colour', c)} ${mine.counts[c]}`).join(' · ')),
        workers.length ? h('p', {}, t('where.worker'), workers.map((w) => `${w.name} ${w.phone || ''}`).join('; ')) : null,
      );
      const [sources, hazards] = await Promise.all([
        api(`risk-sources?layer=${enc(state.layer)}&cell=${enc(mine.code)}&status=active&limit=100`).catch(() => null),
        api(`hazard-points?layer=${enc(state.layer)}&cell=${enc(mine.code)}&limit=100`).catch(() => null),
      ]);
      // The most dangerous first; a long list is cut at 15 with the rest counted.
      const rank = (f) => ['red', 'orange', 'yellow', 'blue'].indexOf(f.properties.level);
      const listOf = (fc, describe) => {
        if (!fc || !fc.features.length) return h('p', { class: 'note' }, fc ? t('where.none') : t('where.unreadable'));
        const features = [...fc.features].sort((a, b) => rank(a) - rank(b));
        const more = (fc.numberMatched ?? features.length) - Math.min(15, features.length);
        return h('ul', {}, features.slice(0, 15).map((f) => h('li', {}, badge(f.properties.level), ` ${f.properties.name} `,
          h('small', {}, describe(f.properties)))), more > 0 ? h('li', { class: 'note' }, t('where.more', { n: num(more) })) : null);
      };
      parts.push(
        h('h3', {}, t('where.sources', { code: mine.code })), listOf(sources, (p) => label('risk_category', p.category)),
        h('h3', {}, t('where.hazards', { code: mine.code })), listOf(hazards, (p) => `${label('hazard_kind', p.kind)}, ${label('hazard_status', p.status)}`),
      );
    }
  }
  const shelters = await sheltersP;
  parts.push(h('h3', {}, t('where.shelters')));
  if (shelters instanceof Error) parts.push(h('p', { class: 'error' }, shelters.message));
  else if (!shelters.features.length) parts.push(h('p', { class: 'note' }, t('o.shelter.none')));
  else {
    parts.push(h('ol', { class: 'where-shelters' }, shelters.features.map((f) => {
      const p = f.properties;
      return h('li', { 'data-id': f.id }, h('strong', {}, p.name),
        t('where.shelter', { distance: num(Math.round(p.distance_m)), free: num(p.free), status: label('shelter_status', p.status), class: label('shelter_class', p.class) }));
    })));
  }
  out.replaceChildren(...parts.filter(Boolean));
  if (move) out.scrollIntoView({ block: 'nearest' });
}

export function parseCoordinate(text, min, max) {
  const value = Number(String(text).trim());
  return Number.isFinite(value) && value >= min && value <= max ? value : null;
}

export function wireWhereAmI() {
  $('where-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const lon = parseCoordinate($('where-lon').value, -180, 180);
    const lat = parseCoordinate($('where-lat').value, -90, 90);
    if (lon === null || lat === null) {
      $('where-result').replaceChildren(h('p', { class: 'error' }, t('where.badInput')));
      return;
    }
    whereAmI(lon, lat);
  });
  $('locate').addEventListener('click', () => {
    const out = $('where-result');
    if (!navigator.geolocation || !window.isSecureContext) {
      out.replaceChildren(h('p', { class: 'note' }, t('where.noGeo')));
      return;
    }
    out.replaceChildren(h('p', { class: 'note' }, t('where.locating')));
    navigator.geolocation.getCurrentPosition(
      (pos) => {
        const { longitude, latitude } = pos.coords;
        $('where-lon').value = longitude.toFixed(6);
        $('where-lat').value = latitude.toFixed(6);
        whereAmI(longitude, latitude);
      },
      (err) => out.replaceChildren(h('p', { class: 'error' }, t('where.noFix', { error: err.message }))),
      { enableHighAccuracy: true, timeout: 15000, maximumAge: 30000 },
    );
  });
}
