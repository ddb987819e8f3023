import type {
	IDataObject,
	IExecuteFunctions,
	IHttpRequestMethods,
	IHttpRequestOptions,
	ILoadOptionsFunctions,
	IWebhookFunctions,
	JsonObject,
} from 'n8n-workflow';
import { NodeApiError, NodeOperationError } from 'n8n-workflow';
import { createHash } from 'crypto';

export type Context = IExecuteFunctions | ILoadOptionsFunctions | IWebhookFunctions;

export const CREDENTIALS = 'key4uJobsApi';

/** One authenticated request to the Key4U Jobs API; its error answers become a NodeApiError naming the status. */
export async function apiRequest(
	this: Context,
	method: IHttpRequestMethods,
	path: string,
	body?: IDataObject | Buffer,
	qs?: IDataObject,
	headers?: IDataObject,
): Promise<IDataObject> {
	const credentials = await this.getCredentials(CREDENTIALS);
	const options: IHttpRequestOptions = {
		method,
		baseURL: String(credentials.baseUrl).replace(/\/+$/, ''),
		url: path,
		json: true,
	};
	if (body !== undefined) options.body = body;
	if (qs !== undefined) options.qs = qs;
	if (headers !== undefined) options.headers = headers;
	try {
		return (await this.helpers.httpRequestWithAuthentication.call(
			this,
			CREDENTIALS,
			options,
		)) as IDataObject;
	} catch (error) {
		throw new NodeApiError(this.getNode(), error as JsonObject);
	}
}

/** Every job of a batch, in item order (GET /v1/batches/{id}/jobs, following next_cursor). */
export async function batchJobs(this: Context, batchId: string): Promise<IDataObject[]> {
	const jobs: IDataObject[] = [];
	let cursor: string | undefined;
	do {
		const qs: IDataObject = { limit: 500 };
		if (cursor) qs.cursor = cursor;
		const page = await apiRequest.call(
			this,
			'GET',
			`/v1/batches/${encodeURIComponent(batchId)}/jobs`,
			undefined,
			qs,
		);
		jobs.push(...((page.items as IDataObject[]) ?? []));
		cursor = (page.next_cursor as string | null) ?? undefined;
	} while (cursor);
	return jobs;
}

/** An upload that expires sooner than this is not reused for a new job (as `k4u batch` does). */
const REUSE_MARGIN_MS = 24 * 3600 * 1000;

/**
 * Store the binary property `property` of item `itemIndex` as an upload: its bytes sent raw to
 * POST /v1/uploads, Content-Type from the binary's mimeType, ?filename= from its fileName. With
 * `reuse`, an unexpired upload of the same bytes (GET /v1/uploads?sha256=) is returned instead, so
 * a Submit run again sends the same reference (and its idempotency key finds the same job).
 */
export async function uploadBinary(
	this: IExecuteFunctions,
	itemIndex: number,
	property: string,
	reuse = false,
): Promise<IDataObject> {
	const items = this.getInputData();
	if (!items[itemIndex]?.binary?.[property]) {
		throw new NodeOperationError(
			this.getNode(),
			`The item has no binary property "${property}" to upload`,
			{ itemIndex },
		);
	}
	const binary = this.helpers.assertBinaryData(itemIndex, property);
	const data = await this.helpers.getBinaryDataBuffer(itemIndex, property);
	if (reuse) {
		const sha256 = createHash('sha256').update(data).digest('hex');
		const found = await apiRequest.call(this, 'GET', '/v1/uploads', undefined, { sha256 });
		const fresh = ((found.items as IDataObject[]) ?? []).find(
			(u) => Date.parse(String(u.expires_at)) > Date.now() + REUSE_MARGIN_MS,
		);
		if (fresh) return fresh;
	}
	const qs: IDataObject = {};
	if (binary.fileName) qs.filename = binary.fileName;
	return await apiRequest.call(this, 'POST', '/v1/uploads', data, qs, {
		'Content-Type': binary.mimeType || 'application/octet-stream',
	});
}
