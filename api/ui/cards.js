// One card per job in the list: media, status chip, progress, prompt, error, batch.
// Cards are updated in place on every poll, so a playing video or a loaded image is not reset.

import { TERMINAL, chip, clear, h, promptOf, short, timeEl } from './dom.js';

const MAX_MEDIA = 4;

function mediaKey(job) {
  return job.assets.map((a) => `${a.index}:${a.sha256 || ''}:${a.url ? 1 : 0}`).join('|');
}

function renderMedia(card, job, ctx) {
  const row = card.querySelector('.media-row');
  ctx.media.release(row);
  clear(row);
  for (const a of job.assets.slice(0, MAX_MEDIA)) row.append(ctx.media.figure(job.id, a));
  if (job.assets.length > MAX_MEDIA) row.append(h('p', { class: 'muted small' }, `+${job.assets.length - MAX_MEDIA} more in details`));
  if (!job.assets.length) row.append(h('div', { class: 'placeholder', 'aria-hidden': 'true' }, TERMINAL.has(job.status) ? '—' : '…'));
  card.dataset.mediaKey = mediaKey(job);
}

export function jobCard(job, ctx) {
  const card = h('li', { class: 'job', dataset: { jobId: job.id } },
    h('div', { class: 'media-row' }),
    h('div', { class: 'info' },
      h('div', { class: 'line' },
        h('button', { type: 'button', class: 'open link', 'aria-label': `Details of job ${job.id}`, onclick: () => ctx.open(job.id) }, job.id),
        h('span', { class: 'chip-slot' })),
      h('div', { class: 'line muted kind' }),
      h('div', { class: 'line' },
        h('progress', { max: '100', value: '0', 'aria-label': `progress of ${job.id}` }),
        h('span', { class: 'pct muted small' })),
      h('p', { class: 'prompt' }),
      h('p', { class: 'err error' }),
      h('div', { class: 'line muted small foot' })));
  updateCard(card, job, ctx);
  return card;
}

export function updateCard(card, job, ctx) {
  const sig = JSON.stringify([job.status, job.progress, job.updated_at, job.attempt, job.error, mediaKey(job)]);
  if (card.dataset.sig === sig) return;
  card.dataset.sig = sig;
  card.dataset.status = job.status;
  card.dataset.provider = job.provider;
  card.querySelector('.chip-slot').replaceChildren(chip(job.status));
  card.querySelector('.kind').textContent = `${job.provider} · ${job.operation}${job.attempt > 1 ? ` · attempt ${job.attempt}` : ''}`;
  const pct = job.status === 'succeeded' ? 100 : Math.max(0, Math.min(100, job.progress || 0));
  card.querySelector('progress').value = pct;
  card.querySelector('.pct').textContent = `${pct}%`;
  const prompt = promptOf(job);
  card.querySelector('.prompt').textContent = short(prompt);
  card.querySelector('.prompt').title = String(prompt);
  card.querySelector('.err').textContent = job.error ? `${job.error.code}: ${short(job.error.message, 200)}` : '';
  const foot = card.querySelector('.foot');
  foot.replaceChildren(timeEl(job.created_at));
  if (job.batch_id) {
    foot.append(' · batch ', h('button', {
      type: 'button', class: 'link small', title: 'Show only this batch', onclick: () => ctx.filterBatch(job.batch_id),
    }, short(job.batch_id, 40)));
  }
  if (card.dataset.mediaKey !== mediaKey(job)) renderMedia(card, job, ctx);
}

// Make `list` show `jobs` in order: new cards created, existing ones updated and moved only when
// out of place, cards of jobs no longer listed removed (their blob: URLs revoked).
export function syncList(list, jobs, ctx) {
  const wanted = new Set(jobs.map((j) => j.id));
  const existing = new Map();
  for (const card of [...list.children]) {
    if (wanted.has(card.dataset.jobId)) {
      existing.set(card.dataset.jobId, card);
    } else {
      ctx.media.release(card);
      card.remove();
    }
  }
  let cursor = list.firstElementChild;
  for (const job of jobs) {
    let card = existing.get(job.id);
    if (card) updateCard(card, job, ctx);
    else card = jobCard(job, ctx);
    if (card === cursor) cursor = cursor.nextElementSibling;
    else list.insertBefore(card, cursor);
  }
}
