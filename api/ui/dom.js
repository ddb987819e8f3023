// DOM helpers. Every value from the API goes in as a text node or a property, never as HTML:
// there is no innerHTML (or outerHTML / insertAdjacentHTML / document.write) anywhere in the gallery.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of [children].flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

export const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);

export function chip(status) {
  return h('span', { class: `chip chip-${status}`, dataset: { status } }, status);
}

export function when(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
}

export function timeEl(iso) {
  return iso ? h('time', { datetime: iso }, when(iso)) : '';
}

export function bytes(n) {
  if (n === null || n === undefined) return '?';
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
  return `${i ? v.toFixed(1) : v} ${units[i]}`;
}

export function short(text, n = 140) {
  const s = String(text ?? '');
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

export function pretty(value) {
  return h('pre', { class: 'json' }, JSON.stringify(value, null, 2));
}

// The text a person recognises a job by: the prompt (or a description) of its input.
export function promptOf(job) {
  const i = job.input || {};
  const inner = i.input && typeof i.input === 'object' ? i.input : {};
  return i.prompt || i.gpt_description_prompt || inner.prompt || i.model || '';
}
