/* gridrisk web map: the four-colour map from vector tiles (/tiles), details from the REST API, and
   live colours from /events (Server-Sent Events). Plain JavaScript, no build step, no external request. */
(() => {
  'use strict';

  // What the page says (i18n.js: Chinese by default, English on the switch); words for the API's
  // codes come from GET /vocabulary through `label`.
  const I18N = window.gridriskI18n;
  const { t, label } = I18N;

  const COLOURS = { red: '#e53935', orange: '#fb8c00', yellow: '#fdd835', blue: '#1e88e5' };
  const SHELTER_CLASSES = { central: '#1b5e20', fixed: '#43a047', emergency: '#00acc1' };
  const HAZARD_KINDS = {
    landslide: '#8e24aa',
    collapse: '#d81b60',
    debris_flow: '#795548',
    ground_subsidence: '#546e7a',
    waterlogging: '#00838f',
    dangerous_building: '#3949ab',
    other: '#757575',
  };
  // Overlay collection → its REST path and the checkbox group that filters it.
  const OVERLAYS = {
    risk_sources: { path: 'risk-sources', prop: 'level', group: 'level', title: 'feature.risk_sources' },
    shelters: { path: 'shelters', prop: 'class', group: 'class', title: 'feature.shelters' },
    hazard_points: { path: 'hazard-points', prop: 'kind', group: 'kind', title: 'feature.hazard_points' },
  };
  // A work order's status → its colour on the map (distinct from the four risk colours).
  const ORDER_STATUSES = {
    open: '#c51162',
    acknowledged: '#ffab00',
    in_progress: '#6200ea',
    done: '#00c853',
    cancelled: '#9e9e9e',
  };
  const TEAM_COLOUR = '#1565c0';
  const DEPOT_COLOUR = '#6a1b9a';
  const WARNING_LAYERS = ['warning-area-fill', 'warning-area-line', 'warning-orders'];
  const EVENT_KINDS = 'cell_colour,feature_changed,layer_changed,warning,work_order';
  const POINTS = ['in', ['geometry-type'], ['literal', ['Point', 'MultiPoint']]];
  const POLYGONS = ['in', ['geometry-type'], ['literal', ['Polygon', 'MultiPolygon']]];

  const state = {
    map: null,
    layer: null, // the grid layer shown
    layers: [],
    key: sessionStorage.getItem('gridrisk.key') || '',
    popup: null,
    openCell: null, // {layer, code, lngLat} of the cell popup, refreshed when its colour changes
    where: null, // the last "where am I" answer
    retryMs: 3000, // the stream's own `retry:` hint replaces it
    lastEventId: null,
    timers: {},
    warnings: [], // the active warnings listed (GeoJSON features)
    warning: null, // the id of the warning shown on the map
    orders: null, // its work orders (FeatureCollection), null until read
    openOrder: null, // the id of the work order whose popup is open
    ordersGen: 0, // drops answers to superseded order requests
  };
  window.gridrisk = state; // for the browser test and for debugging

  // ---------------------------------------------------------------------------------------------
  // Small helpers

  const $ = (id) => document.getElementById(id);

  /** An element with attributes and children; text is always set as text, never parsed as HTML. */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') el.className = v;
      else el.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : String(c));
    }
    return el;
  }

  const num = (n) => (typeof n === 'number' ? n.toLocaleString(I18N.locale) : n ?? '–');
  const badge = (colour) => h('span', { class: `badge ${colour || ''}` }, colour ? label('colour', colour) : '?');
  const enc = encodeURIComponent;

  /** A URL of this service, relative to the page (so the map also works behind a path prefix). */
  const apiUrl = (path) => new URL(path, document.baseURI).href;

  class ApiError extends Error {
    constructor(status, detail) {
      super(detail);
      this.status = status;
    }
  }

  async function api(path) {
    const headers = { Accept: 'application/json, application/geo+json' };
    if (state.key) headers.Authorization = `Bearer ${state.key}`;
    const response = await fetch(apiUrl(path), { headers });
    if (!response.ok) {
      let detail = `${response.status} ${response.statusText}`;
      try {
        detail = (await response.json()).detail || detail;
      } catch (_) {
        /* not problem+json */
      }
      throw new ApiError(response.status, detail);
    }
    return response.json();
  }

  /** Run FN once, DELAY ms after the last call for NAME (bursts of events become one reload). */
  function debounce(name, delay, fn) {
    clearTimeout(state.timers[name]);
    state.timers[name] = setTimeout(fn, delay);
  }

  function definitionList(pairs) {
    return h('dl', {}, pairs.filter(([, v]) => v !== null && v !== undefined && v !== '' && !(Array.isArray(v) && !v.length))
      .flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
  }

  // ---------------------------------------------------------------------------------------------
  // The map and its layers

  /** The collection's TileJSON as a MapLibre source, with absolute tile URLs (the worker needs them). */
  async function tileSource(collection) {
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

  const cellColour = [
    'match', ['coalesce', ['feature-state', 'colour'], ['get', 'colour']],
    'red', COLOURS.red, 'orange', COLOURS.orange, 'yellow', COLOURS.yellow, 'blue', COLOURS.blue,
    '#9e9e9e',
  ];

  function overlayPaint(collection) {
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
  async function showGridLayer(name) {
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
  function setHash() {
    const parts = [`layer=${enc(state.layer)}`];
    if (state.warning !== null) parts.push(`warning=${enc(state.warning)}`);
    history.replaceState(null, '', `#${parts.join('&')}`);
  }

  function overlayLayerIds() {
    return Object.keys(OVERLAYS).flatMap((c) => [`${c}-fill`, `${c}-circle`]);
  }

  async function addOverlays() {
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

  function checked(group) {
    return [...document.querySelectorAll(`input[name="${group}"]:checked`)].map((i) => i.value);
  }

  function applyToggles() {
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

  function showZoomHint() {
    $('zoom-hint').hidden = !state.map || state.map.getZoom() >= state.gridMinzoom;
  }

  async function refreshSummary() {
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

  function openPopup(lngLat, content) {
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

  async function showCell(layer, code, lngLat) {
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

  function featureDetails(collection, p) {
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

  async function showFeature(collection, feature, lngLat) {
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

  function onClick(e) {
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

  // ---------------------------------------------------------------------------------------------
  // Targeted warnings: the active ones in the panel; the one selected draws its area (coloured by
  // its level) and its work orders (coloured by status). Orders need a key with the `field` right.

  const EMPTY = { type: 'FeatureCollection', features: [] };

  function addWarningLayers() {
    const map = state.map;
    const byLevel = ['match', ['get', 'level'], ...Object.entries(COLOURS).flat(), '#9e9e9e'];
    const byStatus = ['match', ['get', 'status'], ...Object.entries(ORDER_STATUSES).flat(), '#616161'];
    map.addSource('warning-area', { type: 'geojson', data: EMPTY });
    map.addSource('warning-orders', { type: 'geojson', data: EMPTY });
    const before = map.getLayer('me') ? 'me' : undefined;
    map.addLayer({ id: 'warning-area-fill', type: 'fill', source: 'warning-area', paint: { 'fill-color': byLevel, 'fill-opacity': 0.18 } }, before);
    map.addLayer({
      id: 'warning-area-line', type: 'line', source: 'warning-area',
      paint: { 'line-color': byLevel, 'line-width': 3, 'line-dasharray': [3, 1.5] },
    }, before);
    map.addLayer({
      id: 'warning-orders', type: 'circle', source: 'warning-orders',
      paint: {
        'circle-color': byStatus,
        'circle-radius': ['interpolate', ['linear'], ['zoom'], 8, 3.5, 12, 6, 16, 9],
        // An overdue order carries a thick dark-red ring; the others a thin white one.
        'circle-stroke-color': ['case', ['get', 'overdue'], '#7f0000', '#ffffff'],
        'circle-stroke-width': ['case', ['get', 'overdue'], 3, 2],
      },
    }, before);
    // What the warning committed (its report): teams at their bases and depots, each linked to the
    // targets it serves.
    map.addSource('warning-links', { type: 'geojson', data: EMPTY });
    map.addSource('warning-resources', { type: 'geojson', data: EMPTY });
    map.addLayer({
      id: 'warning-links', type: 'line', source: 'warning-links',
      paint: { 'line-color': ['match', ['get', 'kind'], 'team', TEAM_COLOUR, DEPOT_COLOUR], 'line-width': 1.5, 'line-dasharray': [2, 2] },
    }, before);
    map.addLayer({
      id: 'warning-resources', type: 'circle', source: 'warning-resources',
      paint: {
        'circle-color': ['match', ['get', 'kind'], 'team', TEAM_COLOUR, DEPOT_COLOUR],
        'circle-radius': ['interpolate', ['linear'], ['zoom'], 8, 4, 12, 7, 16, 10],
        'circle-stroke-color': '#ffffff', 'circle-stroke-width': 2,
      },
    }, before);
    $('order-legend').replaceChildren(...Object.entries(ORDER_STATUSES).map(([status, colour]) =>
      h('li', { 'data-status': status }, h('span', { class: 'dot', style: `background:${colour}` }), label('order_status', status),
        h('output', { 'data-status-count': status }, '–'))));
    const [head, mid, tail] = t('warnings.resources').split(/\{team\}|\{depot\}/);
    $('resources-legend').replaceChildren(head, h('span', { class: 'dot', style: `background:${TEAM_COLOUR}` }), mid,
      h('span', { class: 'dot', style: `background:${DEPOT_COLOUR}` }), tail);
  }

  function warningNote(text, cls) {
    $('warning-note').replaceChildren(...(text ? [h('p', { class: cls || 'note' }, text)] : []));
  }

  /** Read the active warnings into the panel; the one shown keeps its place (its area is redrawn). */
  async function loadWarnings() {
    let fc;
    try {
      fc = await api('warnings?status=active&limit=100');
    } catch (err) {
      if (err.status === 401 || err.status === 403) return; // reads need a key: start() asks for it
      $('warnings-list').replaceChildren(h('li', { class: 'error' }, t('warnings.unreadable', { error: err.message })));
      return;
    }
    state.warnings = fc.features;
    const list = $('warnings-list');
    if (!fc.features.length) list.replaceChildren(h('li', { class: 'note' }, t('warnings.none')));
    else {
      list.replaceChildren(...fc.features.map((f) => {
        const p = f.properties;
        const o = p.orders || {};
        const unfinished = (o.open || 0) + (o.acknowledged || 0) + (o.in_progress || 0);
        return h('li', {},
          h('button', { type: 'button', class: 'warning-item', 'data-id': f.id, 'aria-pressed': String(f.id === state.warning) },
            badge(p.level), ' ', h('strong', {}, p.headline || p.identifier),
            h('small', {}, t('warnings.item', { hazard: label('hazard_type', p.hazard_type), total: num(o.total), unfinished: num(unfinished), done: num(o.done) })
              + (o.overdue ? t('warnings.item.overdue', { overdue: num(o.overdue) }) : ''))));
      }));
    }
    if (state.warning !== null) {
      const id = state.warning;
      const shown = fc.features.find((f) => f.id === id) || (await fetchWarning(id).catch(() => undefined));
      if (id !== state.warning) return;
      if (shown) state.map.getSource('warning-area').setData(shown);
      else if (shown === null) clearWarning();
    }
  }

  /** Warning ID as a map feature (its area and level), null when there is no such warning. One that
      expired or was cancelled leaves the active list but stays shown when it is asked for by address. */
  async function fetchWarning(id) {
    try {
      const w = await api(`warnings/${enc(id)}`);
      return { type: 'Feature', id, geometry: w.area, properties: { level: w.level, headline: w.headline, identifier: w.identifier } };
    } catch (err) {
      if (err.status === 404) return null;
      throw err;
    }
  }

  function clearWarning() {
    state.warning = null;
    state.orders = null;
    state.ordersGen += 1;
    state.map.getSource('warning-area').setData(EMPTY);
    state.map.getSource('warning-orders').setData(EMPTY);
    state.map.getSource('warning-links').setData(EMPTY);
    state.map.getSource('warning-resources').setData(EMPTY);
    $('warning-report').replaceChildren();
    for (const b of document.querySelectorAll('.warning-item')) b.setAttribute('aria-pressed', 'false');
    $('warning-shown').hidden = true;
    warningNote('');
    if (state.openOrder !== null && state.popup) state.popup.remove();
    setHash();
  }

  /** Show warning ID: its area now, its orders when they come; FIT moves the map onto the area. */
  async function selectWarning(id, { fit = true } = {}) {
    state.warning = id;
    setHash();
    for (const b of document.querySelectorAll('.warning-item')) b.setAttribute('aria-pressed', String(Number(b.dataset.id) === id));
    const feature = state.warnings.find((f) => f.id === id) || (await fetchWarning(id));
    if (id !== state.warning) return;
    if (!feature) {
      clearWarning();
      warningNote(t('warnings.missing', { id }), 'error');
      return;
    }
    state.map.getSource('warning-area').setData(feature);
    $('warning-shown').hidden = false;
    $('warning-title').textContent = feature?.properties?.headline || feature?.properties?.identifier || t('warnings.untitled', { id });
    if (fit && feature?.geometry) {
      const bounds = new maplibregl.LngLatBounds();
      const walk = (c) => (typeof c[0] === 'number' ? bounds.extend(c) : c.forEach(walk));
      walk(feature.geometry.coordinates);
      state.map.fitBounds(bounds, { padding: 40, maxZoom: 15, duration: 0 });
    }
    await loadOrders();
  }

  /** (Re)read the shown warning's orders into their source; a missing right asks for a key. */
  async function loadOrders() {
    const id = state.warning;
    if (id === null) return;
    const gen = ++state.ordersGen;
    try {
      const fc = await api(`warnings/${enc(id)}/work-orders.geojson`);
      if (gen !== state.ordersGen) return; // another warning (or a newer read) took over
      state.orders = fc;
      state.map.getSource('warning-orders').setData(fc);
      const counts = {};
      for (const f of fc.features) counts[f.properties.status] = (counts[f.properties.status] || 0) + 1;
      for (const out of document.querySelectorAll('#order-legend output')) out.value = num(counts[out.dataset.statusCount] || 0);
      warningNote(fc.features.length ? t('orders.count', { n: num(fc.features.length) }) : t('orders.none'));
      if (state.openOrder !== null && fc.features.some((f) => f.id === state.openOrder)) refreshOrderPopup();
      await loadReport(id, gen);
    } catch (err) {
      if (gen !== state.ordersGen) return;
      state.orders = null;
      state.map.getSource('warning-orders').setData(EMPTY);
      for (const out of document.querySelectorAll('#order-legend output')) out.value = '–';
      if (err.status === 401 || err.status === 403) {
        warningNote(err.status === 401 ? t('orders.needKey') : t('orders.keyCannot', { error: err.message }), 'error needs-key');
        askForKey();
      } else {
        warningNote(t('orders.unreadable', { error: err.message }), 'error');
      }
    }
  }

  /** The warning's closed loop (GET /warnings/{id}/report): figures in the panel, teams and depots on the map. */
  async function loadReport(id, gen) {
    let r;
    try {
      r = await api(`warnings/${enc(id)}/report`);
    } catch (err) {
      $('warning-report').replaceChildren(h('p', { class: 'error' }, t('report.unreadable', { error: err.message })));
      return;
    }
    if (gen !== state.ordersGen) return;
    const c = r.city;
    const mins = (p50, p90) => (p50 === null ? '–' : t('report.minutes', { p50: num(p50), p90: num(p90) }));
    const rows = [
      [t('report.orders'), t('report.orders.value', { orders: num(c.orders), done: num(c.done), in_progress: num(c.in_progress), open: num(c.open) })],
      [t('report.overdue'), num(c.overdue)],
      [t('report.ack'), mins(c.ack_p50_min, c.ack_p90_min)],
      [t('report.finish'), mins(c.done_p50_min, c.done_p90_min)],
      [t('report.evacuation'), t('report.evacuation.value', { planned: num(c.persons_planned), evacuated: num(c.persons_evacuated), placed: num(c.persons_placed) })
        + (c.persons_without_place ? t('report.evacuation.without', { n: num(c.persons_without_place) }) : '')],
      [t('report.teams'), t('report.teams.value', { committed: num(c.teams_committed), deployed: num(c.teams_deployed) })],
      [t('report.supplies'), t('report.supplies.value', { units: num(c.supply_units), depots: num(r.supplies.length) })],
    ];
    $('warning-report').replaceChildren(
      h('h3', {}, t('report.title')),
      definitionList(rows),
      h('a', { href: apiUrl(`warnings/${enc(id)}/report?f=csv`), download: `warning-${id}-report.csv` }, t('report.csv')),
    );
    const points = [];
    const links = [];
    for (const team of r.teams.filter((x) => !x.released)) {
      points.push({ type: 'Feature', geometry: team.location, properties: { kind: 'team', name: team.name, detail: `${label('capability', team.capability)} → ${team.target_name}` } });
      links.push({ type: 'Feature', geometry: { type: 'LineString', coordinates: [team.location.coordinates, team.target.coordinates] }, properties: { kind: 'team' } });
    }
    for (const d of r.supplies) {
      const items = Object.values(d.items).filter((i) => i.reserved).map((i) => `${i.name} ${num(i.reserved)}${i.unit}`).join('，');
      points.push({ type: 'Feature', geometry: d.location, properties: { kind: 'depot', name: d.name, detail: items } });
    }
    state.map.getSource('warning-resources').setData({ type: 'FeatureCollection', features: points });
    state.map.getSource('warning-links').setData({ type: 'FeatureCollection', features: links });
  }

  function orderDetails(o) {
    const colour = ORDER_STATUSES[o.status] || '#616161';
    const due = o.due_at ? new Date(o.due_at).toLocaleString(I18N.locale) : null;
    const shelter = o.shelter;
    const kind = o.target.type === 'vulnerable_site' ? label('vulnerable_kind', o.target.kind)
      : o.target.type === 'hazard_point' ? label('hazard_kind', o.target.kind) : label('risk_category', o.target.kind);
    return [
      [t('o.action'), label('action', o.action)],
      [t('o.target'), `${o.target.name || o.target.code || ''} (${label('target_type', o.target.type)}, ${kind})`],
      [t('o.status'), h('span', { class: 'order-status', 'data-status': o.status }, h('span', { class: 'dot', style: `background:${colour}` }), label('order_status', o.status))],
      [t('o.due'), due ? `${due}${o.overdue ? t('o.overdue') : ''}` : null],
      [t('o.cell'), o.cell?.code ? `${o.cell.code}${o.cell.name ? ` ${o.cell.name}` : ''}` : t('o.outside')],
      [t('o.assigned'), (o.assignees || []).length
        ? h('ul', {}, o.assignees.map((w) => h('li', {}, `${w.name} `, w.phone ? h('a', { href: `tel:${w.phone}` }, w.phone) : null)))
        : t('o.nobody')],
      [t('f.threatened'), o.threatened_persons ? t('f.persons', { n: num(o.threatened_persons) }) : null],
      [t('o.shelter'), o.action === 'evacuate'
        ? (shelter?.name
          ? t('o.shelter.value', { name: shelter.name, distance: num(Math.round(shelter.distance_m)), free: num(shelter.free), status: label('shelter_status', shelter.status) })
          : shelter?.note || t('o.shelter.none'))
        : null],
      [t('o.places'), (shelter?.places || []).filter((p) => !p.released).length > 1
        ? shelter.places.filter((p) => !p.released).map((p) => `${p.shelter_name} ${num(p.persons)} ${t('unit.persons')}`).join('；') : null],
      [t('o.responsible'), o.responsible?.person || o.responsible?.unit
        ? [o.responsible.person, o.responsible.unit].filter(Boolean).join('，') : null],
      [t('o.teams'), (o.teams || []).filter((x) => !x.released).map((x) => `${x.name}（${label('capability', x.capability)}，${num(Math.round(x.distance_m))} m）`).join('；') || null],
      [t('o.supplies'), (o.supplies || []).filter((x) => !x.released).map((x) => `${x.item_name} ${num(x.quantity)}${x.unit}（${x.depot_name}）`).join('；') || null],
      [t('o.notBooked'), (o.match_notes || []).map((n) => n.message).join(' ') || null],
    ];
  }

  /** The popup of work order ID: its map properties at once, then the full order (assignees, shelter). */
  async function showOrder(id, lngLat) {
    state.openCell = null;
    state.map.setFilter('cells-selected', ['==', ['get', 'code'], '']);
    const box = h('div', { class: 'popup order-popup', 'data-id': id }, h('h3', {}, t('o.title', { id })), h('p', { class: 'note' }, t('loading')));
    openPopup(lngLat, box);
    state.openOrder = id;
    await fillOrderPopup(id, box);
  }

  async function fillOrderPopup(id, box) {
    try {
      const o = await api(`work-orders/${enc(id)}`);
      if (state.openOrder !== id) return;
      box.dataset.status = o.status;
      box.replaceChildren(h('h3', {}, t('o.title', { id })), h('p', { class: 'note' }, o.warning?.headline || ''), definitionList(orderDetails(o)));
    } catch (err) {
      box.replaceChildren(h('h3', {}, t('o.title', { id })), h('p', { class: 'error' }, err.message));
    }
  }

  function refreshOrderPopup() {
    const box = state.popup?.getElement()?.querySelector('.order-popup');
    if (box && Number(box.dataset.id) === state.openOrder) fillOrderPopup(state.openOrder, box);
  }

  /** The four-colour map of the layer shown, framed on the view, as a PNG (GET /risk-map/{layer}.png). */
  function exportImage() {
    const b = state.map.getBounds();
    const bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map((v) => v.toFixed(5)).join(',');
    const canvas = state.map.getCanvas();
    const width = Math.min(4096, Math.max(200, Math.round(canvas.clientWidth * 1.5)));
    const height = Math.min(4096, Math.max(200, Math.round(canvas.clientHeight * 1.5)));
    window.open(apiUrl(`risk-map/${enc(state.layer)}.png?bbox=${bbox}&width=${width}&height=${height}`), '_blank');
  }

  function wireWarnings() {
    $('export-image').addEventListener('click', exportImage);
    $('warnings-list').addEventListener('click', (e) => {
      const item = e.target.closest('.warning-item');
      if (!item) return;
      const id = Number(item.dataset.id);
      if (id === state.warning) clearWarning();
      else selectWarning(id).catch(fail);
    });
    $('warning-clear').addEventListener('click', clearWarning);
  }

  function onWorkOrder(ev) {
    if (ev.warning !== state.warning) return;
    debounce('orders', 300, loadOrders);
    debounce('warnings', 1000, loadWarnings); // the counts in the list
  }

  function onWarning(ev) {
    debounce('warnings', 500, loadWarnings);
    if (ev.id === state.warning) debounce('orders', 300, loadOrders);
  }

  // ---------------------------------------------------------------------------------------------
  // Live: follow /events

  function setLive(text, cls) {
    const el = $('live');
    el.textContent = text;
    el.className = `live ${cls || ''}`;
  }

  const HANDLERS = {
    ready: () => setLive(t('live.on'), 'on'),
    cell_colour: onCellColour,
    feature_changed: onFeatureChanged,
    layer_changed: onLayerChanged,
    warning: onWarning,
    work_order: onWorkOrder,
    replay_gap: resync,
  };

  /** One parsed SSE event: remember its id (for resuming) and hand its JSON payload to its handler. */
  function dispatch(event) {
    if (event.id !== undefined) state.lastEventId = event.id;
    const handler = HANDLERS[event.event || 'message'];
    if (handler && event.data !== undefined) {
      try {
        handler(JSON.parse(event.data));
      } catch (err) {
        console.warn('event', event.event, err);
      }
    }
  }

  /** Read a text/event-stream body (WHATWG SSE rules: fields, comments, blank line ends an event). */
  async function readStream(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    let event = {};
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      const lines = buffer.split(/\r\n|\r|\n/);
      buffer = lines.pop(); // an unfinished line waits for the next chunk
      for (const line of lines) {
        if (line === '') {
          dispatch(event);
          event = {};
          continue;
        }
        if (line.startsWith(':')) continue; // keep-alive comment
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const val = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'data') event.data = event.data === undefined ? val : `${event.data}\n${val}`;
        else if (field === 'event') event.event = val;
        else if (field === 'id') event.id = val;
        else if (field === 'retry' && /^\d+$/.test(val)) state.retryMs = Number(val);
      }
    }
  }

  /** Follow /events for as long as the page is open, resuming by id after any break. fetch() rather
      than EventSource, so that the API key (when reads need one) goes along in a header. */
  async function followEvents() {
    for (;;) {
      const headers = { Accept: 'text/event-stream' };
      if (state.key) headers.Authorization = `Bearer ${state.key}`;
      if (state.lastEventId) headers['Last-Event-ID'] = state.lastEventId;
      try {
        const response = await fetch(apiUrl(`events?kinds=${EVENT_KINDS}`), { headers, cache: 'no-store' });
        if (!response.ok) throw new ApiError(response.status, `${response.status} ${response.statusText}`);
        await readStream(response.body);
        setLive(t('live.reconnecting'), 'off');
      } catch (err) {
        const denied = err.status === 401 || err.status === 403;
        setLive(denied ? t('live.needsKey') : t('live.offline'), 'off');
        if (denied) await new Promise((r) => setTimeout(r, 30000));
      }
      await new Promise((r) => setTimeout(r, state.retryMs));
    }
  }

  /** Colour the cell now (feature-state on every loaded copy of it), then refetch tiles and counts. */
  function onCellColour(ev) {
    if (ev.layer !== state.layer) return;
    const map = state.map;
    const found = map.querySourceFeatures('grid', { sourceLayer: state.layer, filter: ['==', ['get', 'code'], ev.code] });
    for (const id of new Set(found.map((f) => f.id).filter((id) => id !== undefined))) {
      map.setFeatureState({ source: 'grid', sourceLayer: state.layer, id }, { colour: ev.new });
    }
    // Tiles not loaded yet come fresh from the server; the reload makes loaded ones current too.
    debounce('grid', 800, () => map.getSource('grid') && map.refreshTiles('grid'));
    debounce('summary', 500, refreshSummary);
    if (state.openCell && state.openCell.code === ev.code) {
      debounce('popup', 200, () => state.openCell && showCell(state.openCell.layer, state.openCell.code, state.openCell.lngLat));
    }
    if (state.where && state.where.cells?.[ev.layer]?.code === ev.code) {
      debounce('where', 500, () => state.where && whereAmI(state.where.lon, state.where.lat, { move: false }));
    }
  }

  function onFeatureChanged(ev) {
    if (state.map.getSource(ev.collection)) debounce(ev.collection, 500, () => state.map.refreshTiles(ev.collection));
  }

  function onLayerChanged(ev) {
    if (ev.layer === state.layer) resync();
    if (ev.layer === 'district') debounce('districts', 500, () => state.map.refreshTiles('districts'));
  }

  /** Forget live colours and reload everything (after a re-import or a gap in the event history). */
  function resync() {
    const map = state.map;
    if (map.getSource('grid')) map.removeFeatureState({ source: 'grid', sourceLayer: state.layer });
    for (const id of ['grid', 'districts', ...Object.keys(OVERLAYS)]) if (map.getSource(id)) map.refreshTiles(id);
    refreshSummary();
    loadWarnings();
    loadOrders();
  }

  // ---------------------------------------------------------------------------------------------
  // Where am I

  function cellLine(layerName, cell) {
    const title = layerTitle(layerName);
    if (!cell) return h('li', {}, t('where.noCell', { layer: title }));
    return h('li', { 'data-layer': layerName, 'data-code': cell.code }, `${title}: `, h('strong', {}, cell.code), ' ', badge(cell.colour));
  }

  async function whereAmI(lon, lat, { move = true } = {}) {
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

  function parseCoordinate(text, min, max) {
    const value = Number(String(text).trim());
    return Number.isFinite(value) && value >= min && value <= max ? value : null;
  }

  function wireWhereAmI() {
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

  // ---------------------------------------------------------------------------------------------
  // Start

  function wirePanel() {
    const panel = $('panel');
    const toggle = $('panel-toggle');
    const phone = window.matchMedia('(max-width: 700px)');
    const set = (open) => {
      panel.hidden = !open;
      toggle.setAttribute('aria-expanded', String(open));
    };
    set(!phone.matches);
    phone.addEventListener('change', () => set(!phone.matches));
    toggle.addEventListener('click', () => set(panel.hidden));
    $('hazard-kinds').append(...Object.entries(HAZARD_KINDS).map(([kind, colour]) => h('label', {},
      h('input', { type: 'checkbox', name: 'kind', value: kind, checked: true }),
      h('span', { class: 'dot', style: `background:${colour}` }), label('hazard_kind', kind))));
    $('lang-switch').addEventListener('click', I18N.switchLang);
    panel.addEventListener('change', (e) => {
      if (e.target.id === 'grid-layer') showGridLayer(e.target.value).catch(fail);
      else applyToggles();
    });
    $('api-key').value = state.key;
    $('api-key-form').addEventListener('submit', (e) => {
      e.preventDefault();
      state.key = $('api-key').value.trim();
      if (state.key) sessionStorage.setItem('gridrisk.key', state.key);
      else sessionStorage.removeItem('gridrisk.key');
      location.reload();
    });
  }

  /** Open the panel's key form (a key is sent with every request, tiles and events included). */
  function askForKey() {
    $('panel').hidden = false;
    $('panel-toggle').setAttribute('aria-expanded', 'true');
    document.querySelector('details.key').open = true;
    $('api-key').focus();
  }

  function fail(err) {
    if (err.status === 401 || err.status === 403) {
      // Reads need a key here: ask for one.
      setLive(t('live.keyNeeded'), 'off');
      askForKey();
      return;
    }
    console.error(err);
    setLive(t('live.error', { error: err.message }), 'off');
  }

  /** A grid layer's title in the page's language. */
  function layerTitle(name) {
    return I18N.title(state.layers.find((l) => l.name === name)?.title || name);
  }

  /** Words for the API's codes (GET /vocabulary); without them the page shows the codes. */
  async function loadVocabulary() {
    try {
      I18N.setVocabulary(await api('vocabulary'));
    } catch (err) {
      console.warn('vocabulary', err);
    }
  }

  async function start() {
    const [config] = await Promise.all([api('web/config.json').catch(() => ({ basemap: null })), loadVocabulary()]);
    I18N.translatePage();
    wirePanel();
    wireWhereAmI();
    wireWarnings();
    if (typeof maplibregl === 'undefined') throw new Error('the map library did not load');
    const layers = await api('layers');
    state.layers = layers.filter((l) => l.kind === 'grid' && l.cell_count > 0);
    if (!state.layers.length) throw new Error('no grid layer has cells yet');
    const wanted = new URLSearchParams(location.hash.slice(1)).get('layer');
    const first = state.layers.find((l) => l.name === wanted) || state.layers.find((l) => l.name === 'comprehensive') || state.layers[0];
    $('grid-layer').replaceChildren(...state.layers.map((l) => h('option', { value: l.name, selected: l === first }, `${I18N.title(l.title || l.name)} (${num(l.cell_count)})`)));
    const [w, s, e, n] = first.bbox;

    const map = new maplibregl.Map({
      container: 'map',
      style: gridriskBasemap.style(config),
      bounds: [[w, s], [e, n]],
      fitBoundsOptions: { padding: 16 },
      dragRotate: false,
      pitchWithRotate: false,
      attributionControl: { compact: !config.basemap, customAttribution: 'gridrisk' },
      transformRequest: (url) => (state.key && url.startsWith(location.origin) ? { url, headers: { Authorization: `Bearer ${state.key}` } } : { url }),
    });
    state.map = map;
    map.touchZoomRotate.disableRotation();
    map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'top-right');
    map.addControl(new maplibregl.ScaleControl({ unit: 'metric' }), 'bottom-right');
    map.on('error', (e) => console.error('map:', e.error?.message || e));
    await new Promise((resolve) => map.once('load', resolve));
    await addOverlays();
    const asked = Number(new URLSearchParams(location.hash.slice(1)).get('warning'));
    addWarningLayers();
    await showGridLayer(first.name);
    applyToggles();
    await loadWarnings();
    if (Number.isInteger(asked) && asked > 0) await selectWarning(asked);
    map.on('click', onClick);
    map.on('zoomend', showZoomHint);
    map.on('mousemove', (e) => {
      const ids = ['cells-fill', ...overlayLayerIds(), 'warning-orders'].filter((id) => map.getLayer(id));
      map.getCanvas().style.cursor = map.queryRenderedFeatures(e.point, { layers: ids }).length ? 'pointer' : '';
    });
    followEvents();
    // The map may have gone idle during the awaits above: a repaint makes it say so (again) once all is drawn.
    map.once('idle', () => { document.documentElement.dataset.map = 'ready'; });
    map.triggerRepaint();
  }

  start().catch(fail);
})();
