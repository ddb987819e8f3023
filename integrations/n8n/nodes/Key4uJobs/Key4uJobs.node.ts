import type {
	IDataObject,
	IExecuteFunctions,
	ILoadOptionsFunctions,
	INodeExecutionData,
	INodePropertyOptions,
	INodeType,
	INodeTypeDescription,
	IWebhookFunctions,
	IWebhookResponseData,
} from 'n8n-workflow';
import { NodeConnectionTypes, NodeOperationError, WAIT_INDEFINITELY } from 'n8n-workflow';

import { properties } from './description';
import { verifyProblem } from './signature';
import { apiRequest, batchJobs, CREDENTIALS, uploadBinary } from './transport';

const TERMINAL = ['succeeded', 'failed', 'cancelled'];

function parseJson(
	ctx: IExecuteFunctions,
	value: unknown,
	what: string,
	itemIndex: number,
): IDataObject {
	const parsed: unknown = typeof value === 'string' ? safeParse(value) : value;
	if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
		throw new NodeOperationError(ctx.getNode(), `${what} must be a JSON object`, { itemIndex });
	}
	return parsed as IDataObject;
}

function safeParse(text: string): unknown {
	try {
		return JSON.parse(text);
	} catch {
		return undefined;
	}
}

/** Set `path` (a.b.c) of `target` to `value`, creating the objects on the way. */
function setPath(
	ctx: IExecuteFunctions,
	target: IDataObject,
	path: string,
	value: string,
	itemIndex: number,
): void {
	const parts = path.split('.');
	let node = target;
	for (const part of parts.slice(0, -1)) {
		const next = node[part];
		if (next === undefined) node[part] = {};
		else if (next === null || typeof next !== 'object' || Array.isArray(next)) {
			throw new NodeOperationError(ctx.getNode(), `Input field ${path}: ${part} is not an object`, {
				itemIndex,
			});
		}
		node = node[part] as IDataObject;
	}
	node[parts[parts.length - 1]] = value;
}

/**
 * The POST /v1/jobs body of one input item (also one entry of a batch's `jobs`). Each Binary Input
 * (input field = the item's binary property) is uploaded first and the field set to its reference.
 */
async function jobRequest(ctx: IExecuteFunctions, i: number): Promise<IDataObject> {
	const body: IDataObject = { provider: ctx.getNodeParameter('provider', i) as string };
	const operation = ctx.getNodeParameter('providerOperation', i, '') as string;
	if (operation) body.operation = operation;
	if (ctx.getNodeParameter('inputMode', i) === 'fields') {
		const fields = ctx.getNodeParameter('inputFields.field', i, []) as Array<{
			name: string;
			value: string;
		}>;
		body.input = Object.fromEntries(fields.filter((f) => f.name).map((f) => [f.name, f.value]));
	} else {
		body.input = parseJson(ctx, ctx.getNodeParameter('inputJson', i), 'Input', i);
	}
	const extra = ctx.getNodeParameter('additionalFields', i, {}) as IDataObject;
	if (extra.idempotencyKey) body.idempotency_key = extra.idempotencyKey;
	if (extra.metadataJson !== undefined && extra.metadataJson !== '') {
		body.metadata = parseJson(ctx, extra.metadataJson, 'Metadata', i);
	}
	// Submit only: Submit and Wait's callback is the execution's resume URL.
	if (extra.callbackUrl && ctx.getNodeParameter('operation', i) === 'submit') {
		body.callback_url = extra.callbackUrl;
	}
	const binaries = ctx.getNodeParameter('binaryInputs.input', i, []) as Array<{
		field: string;
		binaryProperty: string;
	}>;
	for (const { field, binaryProperty } of binaries.filter((b) => b.field)) {
		const upload = await uploadBinary.call(ctx, i, binaryProperty || 'data', true);
		setPath(ctx, body.input as IDataObject, field.trim(), String(upload.ref), i);
	}
	return body;
}

/**
 * Submit the items as one job (one item) or one batch (several), with the execution's resume URL
 * as callback_url, then park the execution. A node parks the whole execution, not an item, so N
 * items need exactly one notification: batch.completed.
 */
async function submitAndWait(ctx: IExecuteFunctions): Promise<INodeExecutionData[][]> {
	const items = ctx.getInputData();
	const callbackUrl = ctx.evaluateExpression('{{ $execution.resumeUrl }}', 0) as string;
	// Read before the items are replaced below: an expression here may use $json.
	const minutes = ctx.getNodeParameter('waitLimitMinutes', 0, 0) as number;
	// Only the batch carries the resume URL: a job's own callback_url would resume on its first job.
	const requests: IDataObject[] = [];
	for (let i = 0; i < items.length; i++) requests.push(await jobRequest(ctx, i));
	let pending: INodeExecutionData[];
	if (requests.length === 1) {
		const job = await apiRequest.call(ctx, 'POST', '/v1/jobs', {
			...requests[0],
			callback_url: callbackUrl,
		});
		// An idempotent replay of a finished job gets no new notification: nothing would resume us.
		if (TERMINAL.includes(job.status as string)) return [[{ json: job, pairedItem: { item: 0 } }]];
		pending = [{ json: { ...job, wait_timed_out: true }, pairedItem: { item: 0 } }];
	} else {
		const batch = await apiRequest.call(ctx, 'POST', '/v1/batches', {
			jobs: requests,
			callback_url: callbackUrl,
		});
		if (batch.status === 'completed') {
			const jobs = await batchJobs.call(ctx, batch.id as string);
			return [jobs.map((json, i) => ({ json, pairedItem: { item: i } }))];
		}
		pending = (batch.job_ids as string[]).map((id, i) => ({
			json: { id, batch_id: batch.id, status: 'queued', wait_timed_out: true },
			pairedItem: { item: i },
		}));
	}
	// n8n resumes a wait that hits its limit by passing the parked node's input items through
	// without running the node again (n8n-core WorkflowExecute.handleWaitingState disables it).
	// Replacing those items in place is what lets a timed-out wait still name its jobs.
	items.splice(0, items.length, ...pending);
	await ctx.putExecutionToWait(
		minutes > 0 ? new Date(Date.now() + minutes * 60_000) : WAIT_INDEFINITELY,
	);
	return [items];
}

async function perItem(ctx: IExecuteFunctions, operation: string): Promise<INodeExecutionData[][]> {
	const out: INodeExecutionData[] = [];
	const items = ctx.getInputData();
	for (let i = 0; i < items.length; i++) {
		try {
			let json: IDataObject;
			if (operation === 'submit') {
				json = await apiRequest.call(ctx, 'POST', '/v1/jobs', await jobRequest(ctx, i));
			} else if (operation === 'upload') {
				const property = ctx.getNodeParameter('binaryPropertyName', i) as string;
				json = await uploadBinary.call(ctx, i, property);
				// The item keeps its files, so a later node (Submit's Binary Inputs) can use them too.
				out.push({ json, binary: items[i].binary, pairedItem: { item: i } });
				continue;
			} else {
				const id = encodeURIComponent(ctx.getNodeParameter('jobId', i) as string);
				json =
					operation === 'get'
						? await apiRequest.call(ctx, 'GET', `/v1/jobs/${id}`)
						: await apiRequest.call(ctx, 'POST', `/v1/jobs/${id}/${operation}`);
			}
			out.push({ json, pairedItem: { item: i } });
		} catch (error) {
			if (!ctx.continueOnFail()) throw error;
			out.push({ json: { error: (error as Error).message }, pairedItem: { item: i } });
		}
	}
	return [out];
}

export class Key4uJobs implements INodeType {
	description: INodeTypeDescription = {
		displayName: 'Key4U Jobs',
		name: 'key4uJobs',
		icon: { light: 'file:key4u.svg', dark: 'file:key4u.dark.svg' },
		group: ['transform'],
		version: 1,
		subtitle:
			'={{$parameter["operation"] + ($parameter["provider"] ? ": " + $parameter["provider"] : "")}}',
		description: 'Durable generation jobs (video, image, music) through Key4U Jobs',
		defaults: { name: 'Key4U Jobs' },
		inputs: [NodeConnectionTypes.Main],
		outputs: [NodeConnectionTypes.Main],
		// Upload, Submit, Get, Cancel and Retry suit an AI agent; Submit and Wait belongs in a workflow (it
		// parks the whole execution).
		usableAsTool: true,
		credentials: [{ name: CREDENTIALS, required: true }],
		// The resume webhook of Submit and Wait, declared like n8n's Wait node: restartWebhook makes
		// POST {webhookWaitingBaseUrl}/{executionId} ($execution.resumeUrl) call webhook() below.
		webhooks: [
			{
				name: 'default',
				httpMethod: 'POST',
				responseMode: 'onReceived',
				path: '',
				restartWebhook: true,
				isFullPath: true,
			},
		],
		properties,
	};

	methods = {
		loadOptions: {
			async getProviders(this: ILoadOptionsFunctions): Promise<INodePropertyOptions[]> {
				const { providers } = await apiRequest.call(this, 'GET', '/v1/providers');
				return (providers as IDataObject[]).map((p) => ({
					name: p.name as string,
					value: p.name as string,
					description: (p.operations as IDataObject[]).map((o) => o.name).join(', '),
				}));
			},
			async getOperations(this: ILoadOptionsFunctions): Promise<INodePropertyOptions[]> {
				const provider = this.getCurrentNodeParameter('provider') as string;
				const { providers } = await apiRequest.call(this, 'GET', '/v1/providers');
				const found = (providers as IDataObject[]).find((p) => p.name === provider);
				return ((found?.operations as IDataObject[]) ?? []).map((o) => ({
					name: o.name as string,
					value: o.name as string,
					description: o.description as string,
				}));
			},
		},
	};

	async execute(this: IExecuteFunctions): Promise<INodeExecutionData[][]> {
		const operation = this.getNodeParameter('operation', 0) as string;
		if (operation === 'submitAndWait') return await submitAndWait(this);
		return await perItem(this, operation);
	}

	/**
	 * The resume call: a job.* or batch.completed notification POSTed to the resume URL. With a
	 * webhook secret its Standard Webhooks signature is checked over the raw body (a refusal
	 * leaves the execution waiting); the jobs are then read from the API, the source of truth.
	 */
	async webhook(this: IWebhookFunctions): Promise<IWebhookResponseData> {
		const credentials = await this.getCredentials(CREDENTIALS);
		const secret = (credentials.webhookSecret as string | undefined) ?? '';
		const req = this.getRequestObject();
		const refuse = (status: number, error: string): IWebhookResponseData => {
			this.getResponseObject().status(status).json({ error });
			return { noWebhookResponse: true };
		};
		if (secret) {
			const rawBody = req.rawBody ?? Buffer.from('');
			const problem = verifyProblem(
				secret,
				this.getHeaderData() as IDataObject,
				rawBody,
				Math.floor(Date.now() / 1000),
			);
			if (problem) return refuse(401, problem);
		}
		const body = this.getBodyData();
		const type = String(body.type ?? '');
		const id = (body.data as IDataObject | undefined)?.id;
		if (typeof id !== 'string' || !(type === 'batch.completed' || type.startsWith('job.'))) {
			return refuse(400, 'not a Key4U Jobs notification');
		}
		const jobs =
			type === 'batch.completed'
				? await batchJobs.call(this, id)
				: [await apiRequest.call(this, 'GET', `/v1/jobs/${encodeURIComponent(id)}`)];
		return { workflowData: [jobs.map((json) => ({ json }))] };
	}
}
