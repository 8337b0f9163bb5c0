/* gridrisk web map: what every part shares — the page's words (i18n.js), colours and kinds, the
   state of the page, small DOM and API helpers, and the live badge, key form and error handling. */

// What the page says (i18n.js: Chinese by default, English on the switch); words for the API's
// codes come from GET /vocabulary through `label`.
export const I18N = window.gridriskI18n;
export const { t, label } = I18N;

export const COLOURS = { red: '#e53935', orange: '#fb8c00', yellow: '#fdd835', blue: '#1e88e5' };
export const SHELTER_CLASSES = { central: '#1b5e20', fixed: '#43a047', emergency: '#00acc1' };
export const HAZARD_KINDS = {
  landslide: '#8e24aa',
  collapse: '#d81b60',
  debris_flow: '#795548',
  ground_subsidence: '#546e7a',
  waterlogging: '#00838f',
  dangerous_building: '#3949ab',
  other: '#757575',
};
// Overlay collection → its REST path and the checkbox group that filters it.
export const OVERLAYS = {
  risk_sources: { path: 'risk-sources', prop: 'level', group: 'level', title: 'feature.risk_sources' },
  shelters: { path: 'shelters', prop: 'class', group: 'class', title: 'feature.shelters' },
  hazard_points: { path: 'hazard-points', prop: 'kind', group: 'kind', title: 'feature.hazard_points' },
};
// A work order's status → its colour on the map (distinct from the four risk colours).
export const ORDER_STATUSES = {
  open: '#c51162',
  acknowledged: '#ffab00',
  in_progress: '#6200ea',
  done: '#00c853',
  cancelled: '#9e9e9e',
};
export const TEAM_COLOUR = '#1565c0';
export const DEPOT_COLOUR = '#6a1b9a';
export const WARNING_LAYERS = ['warning-area-fill', 'warning-area-line', 'warning-orders'];
export const EVENT_KINDS = 'cell_colour,feature_changed,layer_changed,warning,work_order';
export const POINTS = ['in', ['geometry-type'], ['literal', ['Point', 'MultiPoint']]];
export const POLYGONS = ['in', ['geometry-type'], ['literal', ['Polygon', 'MultiPolygon']]];

export const state = {
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

export const $ = (id) => document.getElementById(id);

/** An element with attributes and children; text is always set as text, never parsed as HTML. */
export function h(tag, attrs, ...children) {
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

export const num = (n) => (typeof n === 'number' ? n.toLocaleString(I18N.locale) : n ?? '–');
export const badge = (colour) => h('span', { class: `badge ${colour || ''}` }, colour ? label('colour', colour) : '?');
export const enc = encodeURIComponent;

/** A URL of this service, relative to the page (so the map also works behind a path prefix). */
export const apiUrl = (path) => new URL(path, document.baseURI).href;

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

export async function api(path) {
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
    throw new ApiError(response.status, problemText(response.status, detail));
  }
  return response.json();
}

/** What a failed request says to the reader: in Chinese, what the status means first, then the
    service's own words (its problem details are English); in English, the service's words. */
export function problemText(status, detail) {
  const key = `http.${status}`;
  const said = t(key);
  if (I18N.lang !== 'zh' || said === key) return detail;
  return `${said}（${detail}）`;
}

/** Run FN once, DELAY ms after the last call for NAME (bursts of events become one reload). */
export function debounce(name, delay, fn) {
  clearTimeout(state.timers[name]);
  state.timers[name] = setTimeout(fn, delay);
}

export function definitionList(pairs) {
  return h('dl', {}, pairs.filter(([, v]) => v !== null && v !== undefined && v !== '' && !(Array.isArray(v) && !v.length))
    .flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}


export function setLive(text, cls) {
  const el = $('live');
  el.textContent = text;
  el.className = `live ${cls || ''}`;
}

/** Open the panel's key form (a key is sent with every request, tiles and events included). */
export function askForKey() {
  $('panel').hidden = false;
  $('panel-toggle').setAttribute('aria-expanded', 'true');
  document.querySelector('details.key').open = true;
  $('api-key').focus();
}

export function fail(err) {
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
export function layerTitle(name) {
  return I18N.title(state.layers.find((l) => l.name === name)?.title || name);
}
