import type {
	IDataObject,
	IExecuteFunctions,
	IHttpRequestMethods,
	IHttpRequestOptions,
	ILoadOptionsFunctions,
	IWebhookFunctions,
	JsonObject,
} from 'n8n-workflow';
import { NodeApiError } from 'n8n-workflow';

export type Context = IExecuteFunctions | ILoadOptionsFunctions | IWebhookFunctions;

export const CREDENTIALS = 'key4uJobsApi';

/** One authenticated request to the Key4U Jobs API; its error answers become a NodeApiError naming the status. */
export async function apiRequest(
	this: Context,
	method: IHttpRequestMethods,
	path: string,
	body?: IDataObject,
	qs?: IDataObject,
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
