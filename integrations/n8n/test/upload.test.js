'use strict';
// Upload, and Submit's Binary Inputs: the bytes of an item's binary property sent raw to
// POST /v1/uploads (Content-Type and ?filename= from the binary), the input field set to the
// upload's reference; an upload of the same bytes that has not expired is reused by Submit.
const test = require('node:test');
const assert = require('node:assert/strict');
const { createHash } = require('node:crypto');

const { Key4uJobs } = require('../dist/nodes/Key4uJobs/Key4uJobs.node.js');
const { executeContext } = require('./helpers');

const PNG = Buffer.concat([
	Buffer.from('89504e470d0a1a0a', 'hex'),
	Buffer.from('not really a picture'),
]);
const SHA = createHash('sha256').update(PNG).digest('hex');
const binaryItem = (extra = {}) => ({
	json: { prompt: 'it runs' },
	binary: {
		photo: { data: PNG.toString('base64'), mimeType: 'image/png', fileName: 'cat 1.png' },
		...extra,
	},
});
const upload = (id, expiresInH = 24 * 7) => ({
	id,
	ref: `k4u://uploads/${id}`,
	sha256: SHA,
	size: PNG.length,
	expires_at: new Date(Date.now() + expiresInH * 3600_000).toISOString(),
});
const UPL = 'upl_' + 'a'.repeat(24);
const OLD = 'upl_' + 'b'.repeat(24);

test('Upload sends the binary raw with its type and file name and returns the upload', async () => {
	const ctx = executeContext({
		params: { operation: 'upload', binaryPropertyName: 'photo' },
		items: [binaryItem()],
		routes: { 'POST /v1/uploads': upload(UPL) },
	});
	const out = await new Key4uJobs().execute.call(ctx);
	assert.equal(ctx.calls.length, 1);
	const [call] = ctx.calls;
	assert.ok(Buffer.isBuffer(call.body) && call.body.equals(PNG), 'the bytes, not JSON');
	assert.deepEqual(call.headers, { 'Content-Type': 'image/png' });
	assert.deepEqual(call.qs, { filename: 'cat 1.png' });
	assert.equal(out[0][0].json.ref, `k4u://uploads/${UPL}`);
	assert.deepEqual(out[0][0].pairedItem, { item: 0 });
	assert.equal(out[0][0].binary, ctx.items[0].binary, 'the item keeps its files for a later node');
});

test('Upload of an item without that binary property fails naming it, before any request', async () => {
	const ctx = executeContext({
		params: { operation: 'upload', binaryPropertyName: 'data' },
		items: [binaryItem()],
	});
	await assert.rejects(new Key4uJobs().execute.call(ctx), /no binary property "data"/);
	assert.equal(ctx.calls.length, 0);
});

const SUBMIT = {
	operation: 'submit',
	provider: 'kling',
	providerOperation: 'image2video',
	inputMode: 'json',
	inputJson: '{"prompt": "it runs", "duration": "5"}',
	binaryInputs: { input: [{ field: 'image', binaryProperty: 'photo' }] },
	additionalFields: { idempotencyKey: 'exec-1-0' },
};

test('Submit uploads a binary input first and sends its reference in the input field', async () => {
	const ctx = executeContext({
		params: SUBMIT,
		items: [binaryItem()],
		routes: {
			'GET /v1/uploads': { items: [upload(OLD, 2)] }, // expires within a day: not reused
			'POST /v1/uploads': upload(UPL),
			'POST /v1/jobs': { id: 'job_1', status: 'queued' },
		},
	});
	await new Key4uJobs().execute.call(ctx);
	assert.deepEqual(
		ctx.calls.map((c) => `${c.method} ${c.url}`),
		['GET /v1/uploads', 'POST /v1/uploads', 'POST /v1/jobs'],
	);
	assert.deepEqual(ctx.calls[0].qs, { sha256: SHA });
	assert.ok(ctx.calls[1].body.equals(PNG));
	assert.deepEqual(ctx.calls[2].body, {
		provider: 'kling',
		operation: 'image2video',
		input: { prompt: 'it runs', duration: '5', image: `k4u://uploads/${UPL}` },
		idempotency_key: 'exec-1-0',
	});
});

test('Submit run again reuses the upload of the same bytes: the same request, so the same job', async () => {
	const ctx = executeContext({
		params: {
			...SUBMIT,
			binaryInputs: {
				input: [
					{ field: 'image', binaryProperty: 'photo' },
					{ field: 'extra.mask', binaryProperty: 'photo' },
				],
			},
		},
		items: [binaryItem()],
		routes: {
			'GET /v1/uploads': { items: [upload(UPL)] },
			'POST /v1/jobs': { id: 'job_1', status: 'queued' },
		},
	});
	await new Key4uJobs().execute.call(ctx);
	assert.deepEqual(
		ctx.calls.map((c) => `${c.method} ${c.url}`),
		['GET /v1/uploads', 'GET /v1/uploads', 'POST /v1/jobs'],
	);
	const input = ctx.calls[2].body.input;
	assert.equal(input.image, `k4u://uploads/${UPL}`);
	assert.deepEqual(input.extra, { mask: `k4u://uploads/${UPL}` });
});

test('Submit and Wait with binary inputs uploads per item, then sends one batch', async () => {
	const params = {
		...SUBMIT,
		operation: 'submitAndWait',
		waitLimitMinutes: 5,
		additionalFields: {},
	};
	const ctx = executeContext({
		params,
		items: [binaryItem(), binaryItem()],
		routes: {
			'GET /v1/uploads': { items: [] },
			'POST /v1/uploads': upload(UPL),
			'POST /v1/batches': { id: 'bat_1', status: 'running', job_ids: ['job_1', 'job_2'] },
		},
	});
	await new Key4uJobs().execute.call(ctx);
	const batch = ctx.calls.find((c) => c.url === '/v1/batches').body;
	assert.deepEqual(
		batch.jobs.map((j) => j.input.image),
		[`k4u://uploads/${UPL}`, `k4u://uploads/${UPL}`],
	);
	assert.equal(ctx.waits.length, 1);
});

test('a binary input field inside a value that is not an object is refused naming the field', async () => {
	const ctx = executeContext({
		params: {
			...SUBMIT,
			binaryInputs: { input: [{ field: 'prompt.image', binaryProperty: 'photo' }] },
		},
		items: [binaryItem()],
		routes: { 'GET /v1/uploads': { items: [upload(UPL)] } },
	});
	await assert.rejects(
		new Key4uJobs().execute.call(ctx),
		/Input field prompt\.image: prompt is not an object/,
	);
	assert.ok(!ctx.calls.some((c) => c.url === '/v1/jobs'));
});
