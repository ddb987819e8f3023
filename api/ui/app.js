// The gallery: token login, filters (kept in the page's query string), the job list refreshed by
// short polling every POLL_MS while the tab is visible, the batch summary and the detail dialog.

import { ApiError, Unauthorized, auth, getJSON, query } from './api.js';
import { syncList } from './cards.js';
import { Detail } from './detail.js';
import { chip, h } from './dom.js';
import { Media } from './media.js';

const POLL_MS = 2000;
const PAGE = 50;
const MAX_PAGE = 500; // GET /v1/jobs answers at most 500 a page

const $ = (id) => document.getElementById(id);
const state = { limit: PAGE, timer: null, inflight: null, running: false };

const media = new Media({ onUnauthorized: () => showLogin('The token was refused; sign in again.') });
const detail = new Detail({ onUnauthorized: () => showLogin('The token was refused; sign in again.'), onChange: () => pollNow() });
const ctx = { media, open: (id) => detail.open(id), filterBatch: (id) => { $('f-batch').value = id; applyFilters(); } };

function filters() {
  return { provider: $('f-provider').value, status: $('f-status').value, batch_id: $('f-batch').value.trim() };
}

function readFiltersFromUrl() {
  const q = new URLSearchParams(location.search);
  const provider = q.get('provider') || '';
  if (provider && ![...$('f-provider').options].some((o) => o.value === provider)) $('f-provider').append(h('option', { value: provider }, provider));
  $('f-provider').value = provider;
  $('f-status').value = q.get('status') || '';
  $('f-batch').value = q.get('batch_id') || '';
}

function applyFilters() {
  history.replaceState(null, '', `${location.pathname}${query(filters())}`);
  state.limit = PAGE;
  media.releaseAll();
  $('jobs').replaceChildren();
  pollNow();
}

function showLogin(message = '') {
  stopPolling();
  if (detail.dialog.open) detail.dialog.close();
  $('app').hidden = true;
  $('logout').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message;
  $('conn').textContent = '';
  $('token').focus();
}

async function showApp(open) {
  $('login').hidden = true;
  $('app').hidden = false;
  $('logout').hidden = open;
  $('conn').textContent = open ? 'The API is open (no token set): development mode' : 'Signed in with a token';
  try {
    const { providers } = await getJSON('/v1/providers');
    const select = $('f-provider');
    const have = new Set([...select.options].map((o) => o.value));
    for (const p of providers) if (!have.has(p.name)) select.append(h('option', { value: p.name }, p.name));
  } catch (err) {
    if (err instanceof Unauthorized) { showLogin('The token was refused.'); return; }
  }
  readFiltersFromUrl();
  state.running = true;
  pollNow();
}

// Try the API with the stored token (or none): open API, valid token, or the login form.
async function start() {
  try {
    await getJSON(`/v1/jobs${query({ limit: 1 })}`, { token: '' });
    showApp(true);
    return;
  } catch (err) {
    if (!(err instanceof Unauthorized)) { $('conn').textContent = `The API did not answer: ${err.message}`; }
  }
  if (!auth.token) { showLogin(); return; }
  try {
    await getJSON(`/v1/jobs${query({ limit: 1 })}`);
    showApp(false);
  } catch (err) {
    if (err instanceof Unauthorized) { auth.clear(); showLogin('The stored token was refused; sign in again.'); } else showLogin(err.message);
  }
}

async function login(ev) {
  ev.preventDefault();
  const token = $('token').value.trim();
  if (!token) return;
  try {
    await getJSON(`/v1/jobs${query({ limit: 1 })}`, { token });
  } catch (err) {
    $('login-error').textContent = err instanceof Unauthorized ? 'That token was refused.' : `Could not sign in: ${err.message}`;
    return;
  }
  auth.set(token);
  $('token').value = '';
  showApp(false);
}

function renderBatch(batchId, batch, cost) {
  const box = $('batch');
  box.hidden = !batchId;
  if (!batchId) return;
  const counts = batch ? Object.entries(batch.counts).filter(([, n]) => n > 0) : [];
  box.replaceChildren(
    h('h2', {}, 'Batch ', h('code', {}, batchId)),
    batch
      ? h('p', {}, `${batch.total} job(s) · `, chip(batch.status === 'completed' ? 'succeeded' : 'running'), ` ${batch.status}`,
        batch.finished_at ? ` · finished ${new Date(batch.finished_at).toLocaleString()}` : '')
      : h('p', { class: 'muted' }, 'Not a batch made with POST /v1/batches: showing the jobs that carry this batch_id.'),
    counts.length ? h('ul', { class: 'counts', 'aria-label': 'Jobs per status' },
      counts.map(([status, n]) => h('li', { dataset: { status, count: String(n) } }, chip(status), ` ${n}`))) : '',
    cost && cost.jobs_with_cost > 0
      ? h('p', { class: 'cost' }, 'Cost reported by the relay: ',
        Object.entries(cost).filter(([k]) => k !== 'jobs_with_cost').map(([k, v]) => `${k} ${v}`).join(' · '),
        ` (from ${cost.jobs_with_cost} job(s))`)
      : h('p', { class: 'muted small' }, 'No cost reported by the relay for this batch.'));
}

async function poll() {
  const f = filters();
  const controller = new AbortController();
  state.inflight?.abort();
  state.inflight = controller;
  try {
    const page = await getJSON(`/v1/jobs${query({ ...f, limit: state.limit })}`, { signal: controller.signal });
    let batch = null;
    if (f.batch_id) {
      try { batch = await getJSON(`/v1/batches/${encodeURIComponent(f.batch_id)}`, { signal: controller.signal }); } catch (err) {
        if (!(err instanceof ApiError && err.status === 404)) throw err;
      }
    }
    if (controller.signal.aborted) return;
    syncList($('jobs'), page.items, ctx);
    renderBatch(f.batch_id, batch, page.cost);
    $('empty').hidden = page.items.length > 0;
    $('more').hidden = !page.next_cursor || state.limit >= MAX_PAGE;
    $('list-error').textContent = '';
    $('updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
    await detail.refresh();
  } catch (err) {
    if (err.name === 'AbortError') return;
    if (err instanceof Unauthorized) { showLogin('The token was refused; sign in again.'); return; }
    $('list-error').textContent = `Could not refresh: ${err.message}`;
  } finally {
    if (state.inflight === controller) state.inflight = null;
  }
}

function stopPolling() {
  state.running = false;
  clearTimeout(state.timer);
  state.inflight?.abort();
}

async function pollNow() {
  clearTimeout(state.timer);
  if (!state.running) return;
  await poll();
  if (state.running && !document.hidden) {
    clearTimeout(state.timer);
    state.timer = setTimeout(pollNow, POLL_MS);
  }
}

$('login-form').addEventListener('submit', login);
$('logout').addEventListener('click', () => { auth.clear(); media.releaseAll(); $('jobs').replaceChildren(); showLogin('Signed out.'); });
$('filters').addEventListener('submit', (ev) => { ev.preventDefault(); applyFilters(); });
$('f-provider').addEventListener('change', applyFilters);
$('f-status').addEventListener('change', applyFilters);
$('f-clear').addEventListener('click', () => { $('filters').reset(); applyFilters(); });
$('more').addEventListener('click', () => { state.limit = Math.min(MAX_PAGE, state.limit + PAGE); pollNow(); });
document.addEventListener('visibilitychange', () => { if (!document.hidden && state.running) pollNow(); });
start();
