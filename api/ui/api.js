// Calls to the Key4U Jobs API with the bearer token kept in sessionStorage (this tab only).
// Paths are resolved against the page (/ui/ -> /), so the gallery also works behind a path prefix.

const TOKEN_KEY = 'k4u.token';
const ROOT = new URL('../', location.href);

export const auth = {
  get token() { return sessionStorage.getItem(TOKEN_KEY) || ''; },
  set(token) { sessionStorage.setItem(TOKEN_KEY, token); },
  clear() { sessionStorage.removeItem(TOKEN_KEY); },
};

export class Unauthorized extends Error {}

export class ApiError extends Error {
  constructor(status, detail) {
    super(`HTTP ${status}${detail ? `: ${detail}` : ''}`);
    this.status = status;
  }
}

export function apiUrl(path) {
  return new URL(path.replace(/^\//, ''), ROOT).toString();
}

function detailText(body) {
  const d = body && body.detail;
  if (typeof d === 'string') return d;
  if (Array.isArray(d)) return d.map((e) => `${(e.loc || []).join('.')}: ${e.msg}`).join('; ');
  return '';
}

async function send(path, { method = 'GET', token = auth.token, signal, accept = 'application/json' } = {}) {
  const headers = { Accept: accept };
  if (token) headers.Authorization = `Bearer ${token}`;
  const r = await fetch(apiUrl(path), { method, headers, signal, cache: 'no-store', credentials: 'omit' });
  if (r.status === 401) throw new Unauthorized('the API wants a valid token');
  if (!r.ok) {
    let body = null;
    try { body = await r.json(); } catch { /* not JSON */ }
    throw new ApiError(r.status, detailText(body));
  }
  return r;
}

export async function getJSON(path, opts) {
  return (await send(path, opts)).json();
}

export async function postJSON(path, opts = {}) {
  return (await send(path, { ...opts, method: 'POST' })).json();
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== '' && v !== null && v !== undefined) q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

export function jobPath(jobId, rest = '') {
  return `/v1/jobs/${encodeURIComponent(jobId)}${rest}`;
}

// <img>/<video>/<audio> cannot send an Authorization header, so asset bytes are fetched here with
// the token and handed to the element as a blob: URL (the asset route has no Range support, so a
// streamed <video src> would gain nothing over a whole-file blob; big files wait for a click).
export async function fetchAsset(jobId, index, attempt, signal) {
  // redirect=false: with an S3 store the bytes still come from our origin (the page's CSP allows only it).
  // attempt: a retried job also shows its earlier attempts' files, each under its own attempt.
  const r = await send(jobPath(jobId, `/assets/${index}${query({ redirect: 'false', attempt })}`), { signal, accept: '*/*' });
  return r.blob();
}

export async function sha256Hex(blob) {
  const digest = await crypto.subtle.digest('SHA-256', await blob.arrayBuffer());
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}
