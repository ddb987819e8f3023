// A job's place in a pipeline, for the detail dialog: its parents (`depends_on`, the jobs whose
// outputs its input references) and its children (`GET /v1/jobs?depends_on=<id>`: the jobs whose
// input references its outputs) as links that open their own detail, and the inputs it used
// (`inputs[]`: an upload, or asset <index> of a parent job) with their sha256 shortened.
// Every value is put in as text (dom.js `h`), never as HTML.

import { h } from './dom.js';

const JOB_ASSET = /^k4u:\/\/jobs\/([^/]+)\/assets\/(\d+)$/;

export function shortSha(sha) {
  const s = String(sha || '');
  return s.length > 12 ? `${s.slice(0, 12)}…` : s;
}

function jobLink(id, open) {
  return h('button', { type: 'button', class: 'link', title: `Open job ${id}`, dataset: { jobLink: id }, onclick: () => open(String(id)) }, String(id));
}

// Where an input came from: an upload, or an asset of a parent job (read from the entry's ids, or
// from its reference when the entry carries no job id).
function source(entry, open) {
  const m = JOB_ASSET.exec(String(entry.ref || ''));
  const jobId = entry.job_id || (m && m[1]);
  if (jobId) {
    const index = entry.index ?? entry.asset_index ?? (m && m[2]);
    return ['asset ', index === undefined || index === null ? '?' : String(index), ' of ', jobLink(jobId, open)];
  }
  if (entry.upload_id) return ['upload ', h('code', {}, String(entry.upload_id))];
  return h('code', { class: 'wrap' }, String(entry.ref || ''));
}

export function hasPipeline(job, children = []) {
  return Boolean((job.depends_on && job.depends_on.length) || (job.inputs && job.inputs.length) || children.length);
}

function links(ids, open) {
  return ids.flatMap((id, i) => (i ? [', ', jobLink(id, open)] : [jobLink(id, open)]));
}

export function pipeline(job, open, children = []) {
  const parents = job.depends_on || [];
  const inputs = job.inputs || [];
  const out = [];
  if (parents.length) {
    out.push(h('p', { class: 'parents' }, `Parent job${parents.length === 1 ? '' : 's'} (its input uses their output): `,
      links(parents, open)));
  }
  if (children.length) {
    out.push(h('p', { class: 'children' }, `Child job${children.length === 1 ? '' : 's'} (their input uses its output): `,
      links(children, open)));
  }
  if (inputs.length) {
    out.push(h('table', { class: 'inputs' },
      h('caption', { class: 'sr-only' }, 'Inputs'),
      h('thead', {}, h('tr', {}, ['field', 'from', 'sha256'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, inputs.map((e) => h('tr', {},
        h('td', {}, h('code', {}, String(e.field ?? ''))),
        h('td', {}, source(e, open)),
        h('td', {}, h('code', { title: String(e.sha256 || '') }, shortSha(e.sha256))))))));
  }
  return out;
}
