// The job detail dialog: the job, its parents and inputs, its events, its notification attempts, and the actions
// cancel (while not finished), retry (failed jobs) and replay (jobs with notifications).

import { ApiError, Unauthorized, getJSON, jobPath, postJSON, query } from './api.js';
import { TERMINAL, bytes, chip, h, pretty, timeEl } from './dom.js';
import { hasPipeline, pipeline } from './pipeline.js';

function section(title, ...body) {
  return h('section', { class: 'd-section' }, h('h3', {}, title), ...body);
}

function table(headers, rows, caption) {
  return h('table', {},
    h('caption', { class: 'sr-only' }, caption),
    h('thead', {}, h('tr', {}, headers.map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, rows.map((cells) => h('tr', {}, cells.map((c) => h('td', {}, c))))));
}

function summary(job) {
  const dl = h('dl', { class: 'kv' });
  const add = (k, v) => { if (v !== null && v !== undefined && v !== '') dl.append(h('dt', {}, k), h('dd', {}, v)); };
  add('status', chip(job.status));
  add('provider', `${job.provider} · ${job.operation}`);
  add('attempt', String(job.attempt));
  add('progress', `${job.progress}%`);
  add('relay task', job.provider_task_id);
  add('batch', job.batch_id);
  add('created', timeEl(job.created_at));
  add('submitted', timeEl(job.submitted_at));
  add('finished', timeEl(job.finished_at));
  add('results expire', timeEl(job.result_expires_at));
  add('relay cancel', job.provider_cancel);
  if (job.error) add('error', `${job.error.code}${job.error.retryable ? ' (retryable)' : ''}: ${job.error.message}`);
  return dl;
}

function assets(job) {
  if (!job.assets.length) return h('p', { class: 'muted' }, 'No assets.');
  return table(['#', 'kind', 'type', 'size', 'sha256', 'source'], job.assets.map((a) => [
    (a.attempt ?? 1) === job.attempt ? String(a.index) : `${a.index} (attempt ${a.attempt})`, a.kind, a.content_type || '', bytes(a.size), h('code', {}, a.sha256 || ''), h('code', { class: 'wrap' }, a.source_url),
  ]), 'Assets');
}

function events(list) {
  if (!list.length) return h('p', { class: 'muted' }, 'No events.');
  return table(['at', 'from', 'to', 'reason'], list.map((e) => [timeEl(e.at), e.from || '—', chip(e.to), e.reason || '']), 'Events');
}

function notifications(list) {
  if (!list.length) return h('p', { class: 'muted' }, 'No notifications (the job has no callback_url, or it is not finished).');
  return list.map((d) => h('div', { class: 'delivery' },
    h('p', {}, h('strong', {}, d.event), ` → `, h('code', { class: 'wrap' }, d.url)),
    h('p', { class: 'small' }, `${d.status} · ${d.attempts} attempt(s)`,
      d.delivered_at ? [' · delivered ', timeEl(d.delivered_at)] : '',
      d.next_attempt_at ? [' · next attempt ', timeEl(d.next_attempt_at)] : '',
      d.last_error ? ` · last error: ${d.last_error}` : ''),
    d.history.length
      ? table(['#', 'at', 'HTTP', 'ms', 'error'], d.history.map((a) => [String(a.attempt), timeEl(a.at), a.status_code === null ? '—' : String(a.status_code), String(a.duration_ms ?? ''), a.error || '']), `Attempts of ${d.webhook_id}`)
      : ''));
}

export class Detail {
  constructor({ onUnauthorized, onChange }) {
    this.onUnauthorized = onUnauthorized;
    this.onChange = onChange;
    this.dialog = document.getElementById('detail');
    this.body = document.getElementById('d-body');
    this.title = document.getElementById('d-title');
    this.msg = document.getElementById('d-msg');
    this.buttons = { cancel: document.getElementById('d-cancel'), retry: document.getElementById('d-retry'), replay: document.getElementById('d-replay') };
    document.getElementById('d-close').addEventListener('click', () => this.dialog.close());
    this.dialog.addEventListener('close', () => { this.jobId = null; });
    this.buttons.cancel.addEventListener('click', () => this.act('cancel', 'Cancel this job? A result the relay already made is not fetched.'));
    this.buttons.retry.addEventListener('click', () => this.act('retry', 'Submit this failed job again? The relay may charge for the new attempt.'));
    this.buttons.replay.addEventListener('click', () => this.act('notifications/replay', null));
    this.jobId = null;
  }

  open(jobId) {
    this.jobId = jobId;
    this.sig = null;
    this.title.textContent = jobId;
    this.msg.textContent = '';
    this.body.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
    if (!this.dialog.open) this.dialog.showModal();
    this.refresh();
  }

  async refresh() {
    const jobId = this.jobId;
    if (!jobId) return;
    try {
      const [job, ev, notes, kids] = await Promise.all([
        getJSON(jobPath(jobId)), getJSON(jobPath(jobId, '/events')), getJSON(jobPath(jobId, '/notifications')),
        getJSON(`/v1/jobs${query({ depends_on: jobId, limit: 50 })}`)]);
      const children = (kids.items || []).map((k) => k.id);
      if (jobId !== this.jobId) return;
      const sig = JSON.stringify([job, ev, notes, children]);
      if (sig === this.sig) return;
      this.sig = sig;
      this.dialog.dataset.status = job.status;
      this.buttons.cancel.disabled = TERMINAL.has(job.status);
      this.buttons.retry.disabled = job.status !== 'failed';
      this.buttons.replay.disabled = notes.length === 0;
      this.body.replaceChildren(
        summary(job),
        hasPipeline(job, children) ? section('Pipeline', pipeline(job, (id) => this.open(id), children)) : '',
        section('Assets', assets(job)),
        section(`Events (${ev.length})`, events(ev)),
        section(`Notifications (${notes.length})`, notifications(notes)),
        section('Input', pretty(job.input)),
        section('Metadata', pretty(job.metadata)),
        job.result ? section('Result', pretty(job.result)) : '');
    } catch (err) {
      if (err instanceof Unauthorized) { this.dialog.close(); this.onUnauthorized(); return; }
      this.msg.textContent = `Could not load: ${err.message}`;
    }
  }

  async act(action, question) {
    const jobId = this.jobId;
    if (!jobId || (question && !window.confirm(question))) return;
    const button = this.buttons[action.split('/')[0] === 'notifications' ? 'replay' : action];
    button.disabled = true;
    try {
      const out = await postJSON(jobPath(jobId, `/${action}`));
      this.msg.textContent = action === 'notifications/replay'
        ? `Replayed ${out.replayed.length} notification(s).`
        : `Done: the job is ${out.status}${action === 'retry' ? ` (attempt ${out.attempt})` : ''}.`;
    } catch (err) {
      if (err instanceof Unauthorized) { this.dialog.close(); this.onUnauthorized(); return; }
      this.msg.textContent = err instanceof ApiError && err.status === 409 ? `Not possible now: ${err.message}` : `Failed: ${err.message}`;
    }
    this.sig = null;
    await this.refresh();
    this.onChange();
  }
}
