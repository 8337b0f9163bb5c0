/* gridrisk web map: targeted warnings — the active ones in the panel; the one selected draws its
   area (coloured by its level), its work orders (coloured by status) and its response report. */

import { $, api, apiUrl, askForKey, badge, COLOURS, debounce, definitionList, DEPOT_COLOUR, enc, fail, h, I18N, label, num, ORDER_STATUSES, state, t, TEAM_COLOUR } from './common.js';
import { openPopup, setHash } from './map.js';

// ---------------------------------------------------------------------------------------------
// Targeted warnings: the active ones in the panel; the one selected draws its area (coloured by
// its level) and its work orders (coloured by status). Orders need a key with the `field` right.

export const EMPTY = { type: 'FeatureCollection', features: [] };

export function addWarningLayers() {
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

export function warningNote(text, cls) {
  $('warning-note').replaceChildren(...(text ? [h('p', { class: cls || 'note' }, text)] : []));
}

/** Read the active warnings into the panel; the one shown keeps its place (its area is redrawn). */
export async function loadWarnings() {
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
export async function fetchWarning(id) {
  try {
    const w = await api(`warnings/${enc(id)}`);
    return { type: 'Feature', id, geometry: w.area, properties: { level: w.level, headline: w.headline, identifier: w.identifier } };
  } catch (err) {
    if (err.status === 404) return null;
    throw err;
  }
}

export function clearWarning() {
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
export async function selectWarning(id, { fit = true } = {}) {
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
export async function loadOrders() {
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
export async function loadReport(id, gen) {
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

export function orderDetails(o) {
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
export async function showOrder(id, lngLat) {
  state.openCell = null;
  state.map.setFilter('cells-selected', ['==', ['get', 'code'], '']);
  const box = h('div', { class: 'popup order-popup', 'data-id': id }, h('h3', {}, t('o.title', { id })), h('p', { class: 'note' }, t('loading')));
  openPopup(lngLat, box);
  state.openOrder = id;
  await fillOrderPopup(id, box);
}

export async function fillOrderPopup(id, box) {
  try {
    const o = await api(`work-orders/${enc(id)}`);
    if (state.openOrder !== id) return;
    box.dataset.status = o.status;
    box.replaceChildren(h('h3', {}, t('o.title', { id })), h('p', { class: 'note' }, o.warning?.headline || ''), definitionList(orderDetails(o)));
  } catch (err) {
    box.replaceChildren(h('h3', {}, t('o.title', { id })), h('p', { class: 'error' }, err.message));
  }
}

export function refreshOrderPopup() {
  const box = state.popup?.getElement()?.querySelector('.order-popup');
  if (box && Number(box.dataset.id) === state.openOrder) fillOrderPopup(state.openOrder, box);
}

/** The four-colour map of the layer shown, framed on the view, as a PNG (GET /risk-map/{layer}.png). */
export function exportImage() {
  const b = state.map.getBounds();
  const bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map((v) => v.toFixed(5)).join(',');
  const canvas = state.map.getCanvas();
  const width = Math.min(4096, Math.max(200, Math.round(canvas.clientWidth * 1.5)));
  const height = Math.min(4096, Math.max(200, Math.round(canvas.clientHeight * 1.5)));
  window.open(apiUrl(`risk-map/${enc(state.layer)}.png?bbox=${bbox}&width=${width}&height=${height}`), '_blank');
}

export function wireWarnings() {
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

export function onWorkOrder(ev) {
  if (ev.warning !== state.warning) return;
  debounce('orders', 300, loadOrders);
  debounce('warnings', 1000, loadWarnings); // the counts in the list
}

export function onWarning(ev) {
  debounce('warnings', 500, loadWarnings);
  if (ev.id === state.warning) debounce('orders', 300, loadOrders);
}
