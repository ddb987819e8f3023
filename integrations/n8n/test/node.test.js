'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { WAIT_INDEFINITELY } = require('n8n-workflow');

const { Key4uJobs } = require('../dist/nodes/Key4uJobs/Key4uJobs.node.js');
const { RESUME_URL, executeContext, loadOptionsContext } = require('./helpers');

const KLING = {
	operation: 'submitAndWait',
	provider: 'kling',
	providerOperation: 'text2video',
	inputMode: 'json',
	inputJson: '{"prompt": "a fox", "duration": "5"}',
	waitLimitMinutes: 30,
	additionalFields: {},
};
const queuedJob = (id) => ({ id, status: 'queued', status_url: `http://api.test/v1/jobs/${id}`, assets: [] });

test('Submit and Wait with one item: one POST /v1/jobs whose callback_url is the resume URL, then parks', async () => {
	const ctx = executeContext({ params: KLING, routes: { 'POST /v1/jobs': queuedJob('job_a1') } });
	const input = ctx.items;
	const before = Date.now();
	const out = await new Key4uJobs().execute.call(ctx);
	assert.equal(ctx.calls.length, 1);
	const [call] = ctx.calls;
	assert.equal(call.credentialsType, 'key4uJobsApi');
	assert.equal(call.baseURL, 'http://api.test');
	assert.deepEqual(call.body, {
		provider: 'kling',
		operation: 'text2video',
		input: { prompt: 'a fox', duration: '5' },
		callback_url: RESUME_URL,
	});
	assert.equal(ctx.waits.length, 1);
	const waitMs = ctx.waits[0].getTime() - before;
	assert.ok(waitMs >= 30 * 60_000 && waitMs < 30 * 60_000 + 5_000, `waits ${waitMs} ms`);
	// The parked input items now name the job: what n8n passes on if the wait limit is reached.
	assert.equal(out[0], input);
	assert.equal(input.length, 1);
	assert.equal(input[0].json.id, 'job_a1');
	assert.equal(input[0].json.wait_timed_out, true);
	assert.deepEqual(input[0].pairedItem, { item: 0 });
});

test('Submit and Wait with three items: one POST /v1/batches, one item per job', async () => {
	const params = (i) => ({ ...KLING, inputJson: JSON.stringify({ prompt: `fox ${i}` }), additionalFields: { idempotencyKey: `k-${i}` } });
	const batch = { id: 'bat_1', status: 'running', total: 3, job_ids: ['job_1', 'job_2', 'job_3'] };
	const ctx = executeContext({ params, items: [{ json: {} }, { json: {} }, { json: {} }], routes: { 'POST /v1/batches': batch } });
	await new Key4uJobs().execute.call(ctx);
	assert.deepEqual(
		ctx.calls.map((c) => `${c.method} ${c.url}`),
		['POST /v1/batches'],
	);
	const body = ctx.calls[0].body;
	assert.equal(body.callback_url, RESUME_URL);
	assert.deepEqual(
		// Only the batch names the resume URL: a job's own callback_url would resume on its first job.
		body.jobs.map((j) => [j.input.prompt, j.idempotency_key, j.callback_url]),
		[
			['fox 0', 'k-0', undefined],
			['fox 1', 'k-1', undefined],
			['fox 2', 'k-2', undefined],
		],
	);
	assert.equal(ctx.waits.length, 1);
	assert.deepEqual(
		ctx.items.map((it) => [it.json.id, it.json.batch_id, it.pairedItem.item]),
		[
			['job_1', 'bat_1', 0],
			['job_2', 'bat_1', 1],
			['job_3', 'bat_1', 2],
		],
	);
});

test('Submit and Wait without a limit waits indefinitely', async () => {
	const ctx = executeContext({ params: { ...KLING, waitLimitMinutes: 0 }, routes: { 'POST /v1/jobs': queuedJob('job_b') } });
	await new Key4uJobs().execute.call(ctx);
	assert.deepEqual(ctx.waits, [WAIT_INDEFINITELY]);
});

test('an idempotent replay of a finished job returns it without parking (no callback would come)', async () => {
	const done = { ...queuedJob('job_c'), status: 'succeeded', assets: [{ index: 0, sha256: 'ab', url: 'http://api.test/v1/jobs/job_c/assets/0' }] };
	const ctx = executeContext({ params: KLING, routes: { 'POST /v1/jobs': done } });
	const out = await new Key4uJobs().execute.call(ctx);
	assert.equal(ctx.waits.length, 0);
	assert.deepEqual(out[0][0].json, done);
});

test('a re-sent batch that is already complete outputs its jobs without parking', async () => {
	const batch = { id: 'bat_2', status: 'completed', job_ids: ['job_1', 'job_2'] };
	const routes = {
		'POST /v1/batches': batch,
		'GET /v1/batches/bat_2/jobs': { items: [{ id: 'job_1', status: 'succeeded' }, { id: 'job_2', status: 'failed' }], next_cursor: null },
	};
	const ctx = executeContext({ params: KLING, items: [{ json: {} }, { json: {} }], routes });
	const out = await new Key4uJobs().execute.call(ctx);
	assert.equal(ctx.waits.length, 0);
	assert.deepEqual(out[0].map((i) => i.json.status), ['succeeded', 'failed']);
});

test('Submit returns at once; input as fields; metadata and callback URL are passed through', async () => {
	const params = {
		...KLING,
		operation: 'submit',
		inputMode: 'fields',
		inputFields: { field: [{ name: 'prompt', value: 'owl' }, { name: '', value: 'ignored' }] },
		additionalFields: { metadataJson: '{"row": 7}', callbackUrl: 'https://hooks.example/x?a=1' },
	};
	const ctx = executeContext({ params, routes: { 'POST /v1/jobs': queuedJob('job_d') } });
	const out = await new Key4uJobs().execute.call(ctx);
	assert.equal(ctx.waits.length, 0);
	assert.deepEqual(ctx.calls[0].body, {
		provider: 'kling',
		operation: 'text2video',
		input: { prompt: 'owl' },
		metadata: { row: 7 },
		callback_url: 'https://hooks.example/x?a=1',
	});
	assert.equal(out[0][0].json.id, 'job_d');
});

test('input that is not a JSON object is refused before any request', async () => {
	for (const inputJson of ['[1, 2]', 'not json', '"text"']) {
		const ctx = executeContext({ params: { ...KLING, operation: 'submit', inputJson } });
		await assert.rejects(new Key4uJobs().execute.call(ctx), /Input must be a JSON object/);
		assert.equal(ctx.calls.length, 0);
	}
});

test('Get, Cancel and Retry address the job by ID; continueOnFail keeps going', async () => {
	const routes = {
		'GET /v1/jobs/job_1': { id: 'job_1', status: 'running' },
		'POST /v1/jobs/job_1/cancel': { id: 'job_1', status: 'cancelled' },
		'POST /v1/jobs/job_1/retry': { id: 'job_1', status: 'queued', attempt: 2 },
	};
	for (const [operation, status] of [['get', 'running'], ['cancel', 'cancelled'], ['retry', 'queued']]) {
		const ctx = executeContext({ params: { operation, jobId: 'job_1' }, routes });
		const out = await new Key4uJobs().execute.call(ctx);
		assert.equal(out[0][0].json.status, status);
	}
	const ctx = executeContext({ params: (i) => ({ operation: 'get', jobId: i ? 'job_1' : 'job_gone' }), items: [{ json: {} }, { json: {} }], routes, continueOnFail: true });
	const out = await new Key4uJobs().execute.call(ctx);
	assert.match(out[0][0].json.error, /job_gone/);
	assert.equal(out[0][1].json.status, 'running');
});

test('provider and operation pickers come from GET /v1/providers', async () => {
	const catalog = {
		providers: [
			{ name: 'kling', operations: [{ name: 'text2video', description: 'Text to video' }, { name: 'image', description: 'Images' }] },
			{ name: 'suno', operations: [{ name: 'music', description: 'Songs' }] },
		],
	};
	const methods = new Key4uJobs().methods.loadOptions;
	const ctx = loadOptionsContext({ current: { provider: 'kling' }, routes: { 'GET /v1/providers': catalog } });
	assert.deepEqual((await methods.getProviders.call(ctx)).map((o) => [o.value, o.description]), [['kling', 'text2video, image'], ['suno', 'music']]);
	assert.deepEqual((await methods.getOperations.call(ctx)).map((o) => o.value), ['text2video', 'image']);
});

test('the node declares a POST restart webhook on the bare resume URL, as the Wait node does', () => {
	const [hook, ...rest] = new Key4uJobs().description.webhooks;
	assert.equal(rest.length, 0);
	assert.deepEqual(
		{ ...hook },
		{ name: 'default', httpMethod: 'POST', responseMode: 'onReceived', path: '', restartWebhook: true, isFullPath: true },
	);
});
