/* gridrisk web map: live colours and orders from /events (Server-Sent Events read with fetch, so
   that an API key can go along), resumed by id after any break. */

import { ApiError, apiUrl, debounce, EVENT_KINDS, OVERLAYS, setLive, state, t } from './common.js';
import { refreshSummary, showCell } from './map.js';
import { loadOrders, loadWarnings, onWarning, onWorkOrder } from './warnings.js';
import { whereAmI } from './where.js';

// ---------------------------------------------------------------------------------------------
// Live: follow /events

export const HANDLERS = {
  ready: () => setLive(t('live.on'), 'on'),
  cell_colour: onCellColour,
  feature_changed: onFeatureChanged,
  layer_changed: onLayerChanged,
  warning: onWarning,
  work_order: onWorkOrder,
  replay_gap: resync,
};

/** One parsed SSE event: remember its id (for resuming) and hand its JSON payload to its handler. */
export function dispatch(event) {
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
export async function readStream(body) {
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
export async function followEvents() {
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
export function onCellColour(ev) {
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

export function onFeatureChanged(ev) {
  if (state.map.getSource(ev.collection)) debounce(ev.collection, 500, () => state.map.refreshTiles(ev.collection));
}

export function onLayerChanged(ev) {
  if (ev.layer === state.layer) resync();
  if (ev.layer === 'district') debounce('districts', 500, () => state.map.refreshTiles('districts'));
}

/** Forget live colours and reload everything (after a re-import or a gap in the event history). */
export function resync() {
  const map = state.map;
  if (map.getSource('grid')) map.removeFeatureState({ source: 'grid', sourceLayer: state.layer });
  for (const id of ['grid', 'districts', ...Object.keys(OVERLAYS)]) if (map.getSource(id)) map.refreshTiles(id);
  refreshSummary();
  loadWarnings();
  loadOrders();
}
