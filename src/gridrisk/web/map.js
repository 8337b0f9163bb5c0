/* gridrisk web map: the map's layers (grid cells from vector tiles, overlays, districts), the
   toggles and legend, and the popups of a cell or a feature. */

import { $, api, apiUrl, badge, COLOURS, definitionList, enc, h, HAZARD_KINDS, label, layerTitle, num, OVERLAYS, POINTS, POLYGONS, SHELTER_CLASSES, state, t, WARNING_LAYERS } from './common.js';
import { showOrder } from './warnings.js';

// ---------------------------------------------------------------------------------------------
// The map and its layers

/** The collection's TileJSON as a MapLibre source, with absolute tile URLs (the worker needs them). */
export async function tileSource(collection) {
  const url = apiUrl(`tiles/${collection}.json`);
  const tj = await api(`tiles/${collection}.json`);
  const absolute = (u) => new URL(u, url).href.replace(/%7B/gi, '{').replace(/%7D/gi, '}');
  return {
    type: 'vector',
    tiles: tj.tiles.map(absolute),
    minzoom: tj.minzoom ?? 0,
    maxzoom: tj.maxzoom ?? 14,
    bounds: tj.bounds,
  };
}

export const cellColour = [
  'match', ['coalesce', ['feature-state', 'colour'], ['get', 'colour']],
  'red', COLOURS.red, 'orange', COLOURS.orange, 'yellow', COLOURS.yellow, 'blue', COLOURS.blue,
  '#9e9e9e',
];

export function overlayPaint(collection) {
  const byLevel = ['match', ['get', 'level'], ...Object.entries(COLOURS).flat(), '#9e9e9e'];
  if (collection === 'risk_sources') {
    const dim = ['case', ['==', ['get', 'status'], 'active'], 1, 0.35];
    return {
      fill: { 'fill-color': byLevel, 'fill-opacity': ['*', 0.35, dim], 'fill-outline-color': '#37474f' },
      circle: {
        'circle-color': byLevel, 'circle-opacity': dim,
        'circle-radius': ['interpolate', ['linear'], ['zoom'], 8, 2, 12, 4, 16, 7],
        'circle-stroke-color': '#263238', 'circle-stroke-width': ['interpolate', ['linear'], ['zoom'], 9, 0, 13, 1],
      },
    };
  }
  if (collection === 'shelters') {
    const byClass = ['match', ['get', 'class'], ...Object.entries(SHELTER_CLASSES).flat(), '#2e7d32'];
    const bySize = ['interpolate', ['linear'], ['sqrt', ['to-number', ['get', 'capacity'], 0]], 0, 2, 30, 4, 200, 12];
    return {
      fill: { 'fill-color': byClass, 'fill-opacity': 0.5, 'fill-outline-color': '#0b3d0b' },
      circle: {
        'circle-color': byClass, 'circle-opacity': 0.85,
        // Radius grows with √capacity (area ∝ capacity): at zoom 12, 900 people ≈ 4 px, 40,000 ≈ 12 px;
        // smaller when the whole city is in view, larger in the streets.
        'circle-radius': ['interpolate', ['linear'], ['zoom'], 8, ['*', 0.4, bySize], 12, bySize, 15, ['*', 1.6, bySize]],
        'circle-stroke-color': '#ffffff', 'circle-stroke-width': 1.5,
      },
    };
  }
  const byKind = ['match', ['get', 'kind'], ...Object.entries(HAZARD_KINDS).flat(), '#757575'];
  const live = ['case', ['in', ['get', 'status'], ['literal', ['remediated', 'closed']]], 0.35, 1];
  return {
    fill: { 'fill-color': byKind, 'fill-opacity': ['*', 0.4, live], 'fill-outline-color': byLevel },
    circle: {
      'circle-color': byKind, 'circle-opacity': live,
      'circle-radius': ['interpolate', ['linear'], ['zoom'], 8, 2.5, 12, 4.5, 16, 7],
      // The ring says the level, the fill the kind.
      'circle-stroke-color': byLevel, 'circle-stroke-width': 2, 'circle-stroke-opacity': live,
    },
  };
}

/** The grid layer's source and its three layers (fill, outline, highlight), below the overlays. */
export async function showGridLayer(name) {
  const map = state.map;
  for (const id of ['cells-selected', 'cells-where', 'cells-line', 'cells-fill']) {
    if (map.getLayer(id)) map.removeLayer(id);
  }
  if (map.getSource('grid')) map.removeSource('grid');
  state.layer = name;
  setHash();
  const source = await tileSource(name);
  state.gridMinzoom = source.minzoom;
  map.addSource('grid', source);
  const before = map.getLayer('districts-line') ? 'districts-line' : undefined;
  map.addLayer({
    id: 'cells-fill', type: 'fill', source: 'grid', 'source-layer': name,
    paint: { 'fill-color': cellColour, 'fill-opacity': 0.7 },
  }, before);
  map.addLayer({
    id: 'cells-line', type: 'line', source: 'grid', 'source-layer': name,
    paint: { 'line-color': '#ffffff', 'line-opacity': 0.8, 'line-width': ['interpolate', ['linear'], ['zoom'], 8, 0.2, 14, 1.2] },
  }, before);
  map.addLayer({
    id: 'cells-where', type: 'line', source: 'grid', 'source-layer': name,
    filter: ['==', ['get', 'code'], state.where?.cells?.[name]?.code ?? ''],
    paint: { 'line-color': '#111111', 'line-width': 3.5, 'line-dasharray': [2, 1] },
  });
  map.addLayer({
    id: 'cells-selected', type: 'line', source: 'grid', 'source-layer': name,
    filter: ['==', ['get', 'code'], ''],
    paint: { 'line-color': '#111111', 'line-width': 2.5 },
  });
  // Keep the overlays above the cells.
  for (const id of overlayLayerIds().concat(WARNING_LAYERS, ['me'])) if (map.getLayer(id)) map.moveLayer(id);
  // The whole city on a phone is below the zoom the cells start at: come in that far.
  if (map.getZoom() < state.gridMinzoom) map.jumpTo({ zoom: state.gridMinzoom });
  showZoomHint();
  await refreshSummary();
}

/** The address keeps the layer and the warning shown (so a reload, e.g. after entering a key, keeps them). */
export function setHash() {
  const parts = [`layer=${enc(state.layer)}`];
  if (state.warning !== null) parts.push(`warning=${enc(state.warning)}`);
  history.replaceState(null, '', `#${parts.join('&')}`);
}

export function overlayLayerIds() {
  return Object.keys(OVERLAYS).flatMap((c) => [`${c}-fill`, `${c}-circle`]);
}

export async function addOverlays() {
  const map = state.map;
  map.addSource('districts', await tileSource('districts'));
  map.addLayer({
    id: 'districts-line', type: 'line', source: 'districts', 'source-layer': 'districts',
    paint: { 'line-color': '#263238', 'line-width': ['interpolate', ['linear'], ['zoom'], 8, 1.2, 14, 3], 'line-opacity': 0.85 },
  });
  for (const collection of Object.keys(OVERLAYS)) {
    map.addSource(collection, await tileSource(collection));
    const paint = overlayPaint(collection);
    map.addLayer({ id: `${collection}-fill`, type: 'fill', source: collection, 'source-layer': collection, filter: POLYGONS, paint: paint.fill });
  }
  // Circles above every polygon, so a point is never hidden under a shelter's site.
  for (const collection of Object.keys(OVERLAYS)) {
    map.addLayer({ id: `${collection}-circle`, type: 'circle', source: collection, 'source-layer': collection, filter: POINTS, paint: overlayPaint(collection).circle });
  }
  map.addSource('me', { type: 'geojson', data: { type: 'FeatureCollection', features: [] } });
  map.addLayer({
    id: 'me', type: 'circle', source: 'me',
    paint: { 'circle-radius': 8, 'circle-color': '#0d47a1', 'circle-stroke-color': '#ffffff', 'circle-stroke-width': 3 },
  });
}

// ---------------------------------------------------------------------------------------------
// Toggles and legend

export function checked(group) {
  return [...document.querySelectorAll(`input[name="${group}"]:checked`)].map((i) => i.value);
}

export function applyToggles() {
  const map = state.map;
  if (!map || !map.getLayer('districts-line')) return;
  for (const [collection, spec] of Object.entries(OVERLAYS)) {
    const visible = $(`show-${collection}`).checked ? 'visible' : 'none';
    const only = ['in', ['get', spec.prop], ['literal', checked(spec.group)]];
    map.setFilter(`${collection}-fill`, ['all', POLYGONS, only]);
    map.setFilter(`${collection}-circle`, ['all', POINTS, only]);
    map.setLayoutProperty(`${collection}-fill`, 'visibility', visible);
    map.setLayoutProperty(`${collection}-circle`, 'visibility', visible);
  }
  map.setLayoutProperty('districts-line', 'visibility', $('show-districts').checked ? 'visible' : 'none');
}

export function showZoomHint() {
  $('zoom-hint').hidden = !state.map || state.map.getZoom() >= state.gridMinzoom;
}

export async function refreshSummary() {
  const layer = state.layer;
  try {
    const summary = await api(`risk-map/${enc(layer)}/summary`);
    if (layer !== state.layer) return;
    for (const out of document.querySelectorAll('#legend output')) {
      out.value = num(summary.city[out.dataset.count]);
    }
  } catch (err) {
    console.warn('summary', err);
  }
}

// ---------------------------------------------------------------------------------------------
// Popups: a cell, or a risk source / shelter / hazard point

export function openPopup(lngLat, content) {
  if (state.popup) state.popup.remove();
  const popup = new maplibregl.Popup({ maxWidth: '22rem', focusAfterOpen: false })
    .setLngLat(lngLat).setDOMContent(content).addTo(state.map);
  popup.on('close', () => {
    if (state.popup !== popup) return;
    state.popup = null;
    state.openCell = null;
    state.openOrder = null;
    if (state.map.getLayer('cells-selected')) state.map.setFilter('cells-selected', ['==', ['get', 'code'], '']);
  });
  state.popup = popup;
  return popup;
}

export async function showCell(layer, code, lngLat) {
  state.openCell = { layer, code, lngLat };
  state.map.setFilter('cells-selected', ['==', ['get', 'code'], code]);
  const box = h('div', { class: 'popup cell-popup', 'data-code': code }, h('h3', {}, code), h('p', { class: 'note' }, t('loading')));
  if (!state.popup || state.popup.getElement()?.querySelector('.cell-popup')?.dataset.code !== code) openPopup(lngLat, box);
  else state.popup.setDOMContent(box);
  try {
    const [risk, cell] = await Promise.all([
      api(`risk-map/${enc(layer)}/cells/${enc(code)}`),
      api(`layers/${enc(layer)}/cells/${enc(code)}`),
    ]);
    if (state.openCell?.code !== code) return;
    const p = cell.properties;
    const counts = risk.counts;
    box.replaceChildren(
      h('h3', {}, code),
      definitionList([
        [t('cell.name'), p.name],
        [t('cell.colour'), h('span', { 'data-colour': risk.colour }, badge(risk.colour), ` ${label('level', risk.colour) || ''}`)],
        [t('cell.pinned'), risk.pinned_colour ? h('span', {}, badge(risk.pinned_colour), t('cell.pinnedBy', { by: risk.pinned_by, reason: risk.pin_reason })) : null],
        [t('cell.computed'), risk.pinned_colour ? badge(risk.computed_colour) : null],
        [t('cell.sources'), ['red', 'orange', 'yellow', 'blue'].map((c) => `${label('colour', c)} ${counts[c] ?? 0}`).join(' · ')],
        [t('cell.population'), num(p.population)],
        [t('cell.district'), p.district_code],
        [t('cell.workers'), p.workers.length
          ? h('ul', {}, p.workers.map((w) => h('li', {}, `${w.name} `, w.phone ? h('a', { href: `tel:${w.phone}` }, w.phone) : null)))
          : t('cell.noWorkers')],
      ]),
    );
  } catch (err) {
    box.replaceChildren(h('h3', {}, code), h('p', { class: 'error' }, err.message));
  }
}

export function featureDetails(collection, p) {
  if (collection === 'risk_sources') {
    const a = p.assessment || {};
    return [
      [t('f.level'), h('span', {}, badge(p.level), p.override ? t('f.override', { reason: p.override.reason || '' }) : '')],
      [t('f.status'), label('source_status', p.status)], [t('f.category'), label('risk_category', p.category)],
      [t('f.assessment'), a.method === 'direct' ? t('f.assessment.direct', { reason: p.reason || '' })
        : a.method ? `${a.method} ${a.method === 'LEC' ? `L ${a.L} × E ${a.E} × C ${a.C}` : `L ${a.L} × S ${a.S}`} = ${a.score} → ${label('colour', a.computed_level)}` : null],
      [t('f.enterprise'), p.enterprise], [t('f.department'), p.department], [t('f.address'), p.address],
      [t('f.plate'), p.plate_code],
      [t('f.cells'), p.cells ? Object.entries(p.cells).map(([l, c]) => `${layerTitle(l)}: ${c}`).join(', ') : null],
    ];
  }
  if (collection === 'shelters') {
    return [
      [t('f.class'), label('shelter_class', p.class)], [t('f.status'), label('shelter_status', p.status)],
      [t('f.capacity'), num(p.capacity)], [t('f.occupancy'), num(p.occupancy)], [t('f.free'), num(p.free)],
      [t('f.area'), p.effective_area_m2 ? `${num(p.effective_area_m2)} m²` : null],
      [t('f.facilities'), (p.facilities || []).join(', ')], [t('f.address'), p.address],
      [t('f.managedBy'), p.managing_unit], [t('f.warnings'), (p.warnings || []).join('; ')],
    ];
  }
  return [
    [t('f.kind'), label('hazard_kind', p.kind)], [t('f.level'), badge(p.level)], [t('f.status'), label('hazard_status', p.status)],
    [t('f.threatened'), p.threatened_persons !== undefined ? t('f.persons', { n: num(p.threatened_persons) }) : null],
    [t('f.responsible'), [p.responsible_person, p.responsible_unit].filter(Boolean).join(', ')],
    [t('f.address'), p.address], [t('f.notes'), p.notes],
  ];
}

export async function showFeature(collection, feature, lngLat) {
  const spec = OVERLAYS[collection];
  const id = feature.properties.id ?? feature.id;
  state.openCell = null;
  state.map.setFilter('cells-selected', ['==', ['get', 'code'], '']);
  const box = h('div', { class: 'popup feature-popup', 'data-collection': collection, 'data-id': id },
    h('h3', {}, `${t(spec.title)} ${feature.properties.code || id}`), h('p', { class: 'note' }, t('loading')));
  openPopup(lngLat, box);
  try {
    const f = await api(`${spec.path}/${enc(id)}`);
    box.replaceChildren(
      h('h3', {}, f.properties.name),
      h('p', { class: 'note' }, `${t(spec.title)} ${f.properties.code}`),
      definitionList(featureDetails(collection, f.properties)),
    );
  } catch (err) {
    box.replaceChildren(h('h3', {}, `${t(spec.title)} ${id}`), h('p', { class: 'error' }, err.message));
  }
}

export function onClick(e) {
  const map = state.map;
  const pad = 5;
  const box = [[e.point.x - pad, e.point.y - pad], [e.point.x + pad, e.point.y + pad]];
  const [order] = map.getLayer('warning-orders') ? map.queryRenderedFeatures(box, { layers: ['warning-orders'] }) : [];
  if (order) return showOrder(order.id ?? order.properties.id, order.geometry.coordinates);
  const [resource] = map.getLayer('warning-resources') ? map.queryRenderedFeatures(box, { layers: ['warning-resources'] }) : [];
  if (resource) {
    const p = resource.properties;
    const title = p.kind === 'team' ? t('resource.team') : t('resource.depot');
    return openPopup(resource.geometry.coordinates, h('div', { class: 'popup resource-popup' }, h('h3', {}, p.name), h('p', { class: 'note' }, title), h('p', {}, p.detail)));
  }
  const ids = overlayLayerIds().filter((id) => map.getLayer(id) && map.getLayoutProperty(id, 'visibility') !== 'none');
  const [hit] = map.queryRenderedFeatures(box, { layers: ids });
  if (hit) return showFeature(hit.layer.source, hit, e.lngLat);
  const [cell] = map.queryRenderedFeatures(e.point, { layers: ['cells-fill'] });
  if (cell) return showCell(state.layer, cell.properties.code, e.lngLat);
  return null;
}
