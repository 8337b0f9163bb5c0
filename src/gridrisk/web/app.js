/* gridrisk web map: the four-colour map from vector tiles (/tiles), details from the REST API, and
   live colours from /events. Plain JavaScript modules, no build step, no external request; this
   one wires the panel and starts the map. */

import { $, api, fail, h, HAZARD_KINDS, I18N, label, num, state } from './common.js';
import { followEvents } from './live.js';
import { addOverlays, applyToggles, onClick, overlayLayerIds, showGridLayer, showZoomHint } from './map.js';
import { addWarningLayers, loadWarnings, selectWarning, wireWarnings } from './warnings.js';
import { wireWhereAmI } from './where.js';

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
