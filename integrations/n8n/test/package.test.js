'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));

test('package.json follows the community-node conventions', () => {
	assert.match(pkg.name, /^n8n-nodes-/);
	assert.ok(pkg.keywords.includes('n8n-community-node-package'));
	assert.equal(pkg.license, 'MIT');
	assert.equal(pkg.dependencies, undefined, 'no runtime dependencies');
	assert.deepEqual(Object.keys(pkg.peerDependencies), ['n8n-workflow']);
	assert.equal(pkg.n8n.n8nNodesApiVersion, 1);
	for (const file of [...pkg.n8n.credentials, ...pkg.n8n.nodes]) {
		assert.match(file, /^dist\//);
		assert.ok(fs.existsSync(path.join(root, file)), `${file} is built`);
	}
});

test('the credential sends the token as Bearer and tests it with GET /v1/providers', () => {
	const { Key4uJobsApi } = require('../dist/credentials/Key4uJobsApi.credentials.js');
	const cred = new Key4uJobsApi();
	assert.equal(cred.name, 'key4uJobsApi');
	assert.equal(cred.displayName, 'Key4U Jobs API');
	assert.equal(cred.authenticate.properties.headers.Authorization, '=Bearer {{$credentials.apiToken}}');
	assert.equal(cred.test.request.url, '/v1/providers');
	const byName = Object.fromEntries(cred.properties.map((p) => [p.name, p]));
	assert.equal(byName.apiToken.typeOptions.password, true);
	assert.equal(byName.webhookSecret.typeOptions.password, true);
});

test('the node code reads no environment and no files', () => {
	const dir = path.join(root, 'nodes');
	const sources = fs.readdirSync(dir, { recursive: true }).filter((f) => f.endsWith('.ts'));
	for (const file of [...sources.map((f) => path.join(dir, f)), path.join(root, 'credentials', 'Key4uJobsApi.credentials.ts')]) {
		const text = fs.readFileSync(file, 'utf8');
		assert.doesNotMatch(text, /process\.env|from 'fs'|require\('fs'\)|node:fs/, file);
	}
});
