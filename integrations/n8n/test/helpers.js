'use strict';
// A hand-made IExecuteFunctions / IWebhookFunctions / ILoadOptionsFunctions: parameters from a
// plain object, every API request recorded and answered by a route table, so the tests see exactly
// what the node sends to Key4U Jobs.
const { NodeOperationError } = require('n8n-workflow');

const CREDENTIALS = { baseUrl: 'http://api.test/', apiToken: 'tok', webhookSecret: '' };
const RESUME_URL = 'http://127.0.0.1:5678/webhook-waiting/42?x=1&y=%2F';

function getPath(obj, path) {
	return path.split('.').reduce((o, k) => (o === undefined || o === null ? undefined : o[k]), obj);
}

function api(routes) {
	const calls = [];
	const request = async function (credentialsType, options) {
		calls.push({ credentialsType, ...options });
		const key = `${options.method} ${options.url}`;
		const answer = routes[key];
		if (answer === undefined) throw new Error(`unexpected request ${key}`);
		return typeof answer === 'function' ? answer(options) : structuredClone(answer);
	};
	return { calls, request };
}

function node() {
	return { id: 'n1', name: 'Key4U Jobs', type: 'n8n-nodes-key4u-jobs.key4uJobs', typeVersion: 1, position: [0, 0], parameters: {} };
}

/** params: either one object for every item or a function (itemIndex) => object. */
function executeContext({ params, items = [{ json: {} }], routes = {}, continueOnFail = false }) {
	const { calls, request } = api(routes);
	const waits = [];
	const paramsOf = typeof params === 'function' ? params : () => params;
	const ctx = {
		calls,
		waits,
		items,
		getInputData: () => items,
		getNode: node,
		getNodeParameter(name, i, fallback) {
			const v = getPath(paramsOf(i), name);
			if (v === undefined) {
				if (fallback !== undefined) return fallback;
				throw new NodeOperationError(node(), `no parameter ${name}`);
			}
			return v;
		},
		getCredentials: async () => ({ ...CREDENTIALS }),
		evaluateExpression(expr) {
			if (expr.replace(/\s/g, '') !== '{{$execution.resumeUrl}}') throw new Error(`unexpected ${expr}`);
			return RESUME_URL;
		},
		putExecutionToWait: async (date) => {
			waits.push(date);
		},
		continueOnFail: () => continueOnFail,
		helpers: {
			httpRequestWithAuthentication: request,
			// n8n's binary data in memory mode: { data: base64, mimeType, fileName }.
			assertBinaryData(i, property) {
				const binary = items[i].binary && items[i].binary[property];
				if (!binary) throw new NodeOperationError(node(), `no binary ${property}`);
				return binary;
			},
			getBinaryDataBuffer: async (i, property) => Buffer.from(items[i].binary[property].data, 'base64'),
		},
	};
	return ctx;
}

function webhookContext({ headers = {}, rawBody, secret = '', routes = {} }) {
	const { calls, request } = api(routes);
	const response = { statusCode: 200, sent: undefined };
	const res = {
		status(code) {
			response.statusCode = code;
			return res;
		},
		json(body) {
			response.sent = body;
			return res;
		},
	};
	return {
		calls,
		response,
		getNode: node,
		getCredentials: async () => ({ ...CREDENTIALS, webhookSecret: secret }),
		getRequestObject: () => ({ rawBody }),
		getResponseObject: () => res,
		getHeaderData: () => headers,
		getBodyData: () => JSON.parse(rawBody.toString('utf8')),
		helpers: { httpRequestWithAuthentication: request },
	};
}

function loadOptionsContext({ current = {}, routes = {} }) {
	const { calls, request } = api(routes);
	return {
		calls,
		getNode: node,
		getCurrentNodeParameter: (name) => current[name],
		getCredentials: async () => ({ ...CREDENTIALS }),
		helpers: { httpRequestWithAuthentication: request },
	};
}

module.exports = { CREDENTIALS, RESUME_URL, executeContext, webhookContext, loadOptionsContext };
