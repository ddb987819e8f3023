'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');

const { Key4uJobs } = require('../dist/nodes/Key4uJobs/Key4uJobs.node.js');
const { sign, verifyProblem } = require('../dist/nodes/Key4uJobs/signature.js');
const { webhookContext } = require('./helpers');

// The secret and a signature computed by Key4U Jobs itself (providers.webhooks.sign in Python).
const SECRET = 'whsec_ZfUyTg5gSBswdDJt94lKEl5sQYBWuo7n';
const PY_BODY = Buffer.from('{"type":"job.succeeded","data":{"id":"job_1"}}');
const PY_SIGNATURE = 'v1,u+RY27PwYc98xmOyy8Eso0YrsHGfQe915kUzHAwZ/GI=';

const now = () => Math.floor(Date.now() / 1000);
function signed(body, secret = SECRET, stamp = now()) {
	const raw = Buffer.from(JSON.stringify(body));
	return { rawBody: raw, headers: { 'webhook-id': 'msg_1', 'webhook-timestamp': String(stamp), 'webhook-signature': sign(secret, 'msg_1', stamp, raw) } };
}

test('signatures match the ones Key4U Jobs computes', () => {
	assert.equal(sign(SECRET, 'msg_job_1_succeeded', 1700000000, PY_BODY), PY_SIGNATURE);
	const headers = { 'webhook-id': 'msg_job_1_succeeded', 'webhook-timestamp': '1700000000', 'webhook-signature': `v1,bogus= ${PY_SIGNATURE}` };
	assert.equal(verifyProblem(SECRET, headers, PY_BODY, 1700000100), undefined);
	assert.match(verifyProblem(SECRET, headers, PY_BODY, 1700000400), /away from now/);
	assert.equal(verifyProblem(SECRET, headers, Buffer.from(PY_BODY.toString() + ' '), 1700000100), 'bad webhook signature');
	assert.match(verifyProblem(SECRET, {}, PY_BODY, 1700000100), /missing/);
});

test('a signed job notification resumes with the job read from the API', async () => {
	const job = { id: 'job_1', status: 'succeeded', assets: [{ index: 0, sha256: 'aa', url: 'http://api.test/v1/jobs/job_1/assets/0' }] };
	const ctx = webhookContext({ ...signed({ type: 'job.succeeded', data: { id: 'job_1' } }), secret: SECRET, routes: { 'GET /v1/jobs/job_1': job } });
	const out = await new Key4uJobs().webhook.call(ctx);
	assert.deepEqual(out.workflowData, [[{ json: job }]]);
});

test('a bad or missing signature is refused with 401 and reads nothing (the execution keeps waiting)', async () => {
	for (const delivery of [
		signed({ type: 'job.succeeded', data: { id: 'job_1' } }, 'whsec_b3RoZXIgc2VjcmV0IG9mIDMyIGJ5dGVzIGxvbmchIQ=='),
		{ rawBody: Buffer.from('{"type":"job.succeeded","data":{"id":"job_1"}}'), headers: {} },
		signed({ type: 'job.succeeded', data: { id: 'job_1' } }, SECRET, now() - 3600),
	]) {
		const ctx = webhookContext({ ...delivery, secret: SECRET });
		const out = await new Key4uJobs().webhook.call(ctx);
		assert.deepEqual(out, { noWebhookResponse: true });
		assert.equal(ctx.response.statusCode, 401);
		assert.equal(ctx.calls.length, 0);
	}
});

test('batch.completed outputs one item per job, following next_cursor', async () => {
	const routes = {
		'GET /v1/batches/bat_1/jobs': (options) =>
			options.qs.cursor === 'job_2'
				? { items: [{ id: 'job_3' }], next_cursor: null }
				: { items: [{ id: 'job_1' }, { id: 'job_2' }], next_cursor: 'job_2' },
	};
	const ctx = webhookContext({ ...signed({ type: 'batch.completed', data: { id: 'bat_1' } }), secret: SECRET, routes });
	const out = await new Key4uJobs().webhook.call(ctx);
	assert.deepEqual(out.workflowData[0].map((i) => i.json.id), ['job_1', 'job_2', 'job_3']);
	assert.equal(ctx.calls.length, 2);
});

test('without a webhook secret an unsigned notification is accepted; a foreign body is refused', async () => {
	const ok = webhookContext({ rawBody: Buffer.from('{"type":"job.failed","data":{"id":"job_9"}}'), routes: { 'GET /v1/jobs/job_9': { id: 'job_9', status: 'failed' } } });
	assert.equal((await new Key4uJobs().webhook.call(ok)).workflowData[0][0].json.status, 'failed');
	const foreign = webhookContext({ rawBody: Buffer.from('{"hello":"world"}') });
	assert.deepEqual(await new Key4uJobs().webhook.call(foreign), { noWebhookResponse: true });
	assert.equal(foreign.response.statusCode, 400);
});
