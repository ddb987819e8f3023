import type {
	IAuthenticateGeneric,
	Icon,
	ICredentialTestRequest,
	ICredentialType,
	INodeProperties,
} from 'n8n-workflow';

/**
 * Where the Key4U Jobs API runs and how to talk to it. The token goes out as a Bearer header on
 * every request; the webhook secret (optional) lets Submit and Wait check that the notification
 * that resumes the execution really came from Key4U Jobs.
 */
export class Key4uJobsApi implements ICredentialType {
	name = 'key4uJobsApi';

	displayName = 'Key4U Jobs API';

	icon: Icon = { light: 'file:../icons/key4u.svg', dark: 'file:../icons/key4u.dark.svg' };

	documentationUrl = 'https://github.com/key4u/key4u-jobs/tree/main/integrations/n8n#credentials';

	properties: INodeProperties[] = [
		{
			displayName: 'Base URL',
			name: 'baseUrl',
			type: 'string',
			default: 'http://127.0.0.1:8000',
			placeholder: 'https://jobs.example.com',
			description: 'Where the Key4U Jobs API answers (without /v1)',
			required: true,
		},
		{
			displayName: 'API Token',
			name: 'apiToken',
			type: 'string',
			typeOptions: { password: true },
			default: '',
			description: 'One of the tokens in K4U_API_TOKENS, sent as Authorization: Bearer',
		},
		{
			displayName: 'Webhook Secret',
			name: 'webhookSecret',
			type: 'string',
			typeOptions: { password: true },
			default: '',
			placeholder: 'whsec_...',
			description:
				'K4U_WEBHOOK_SECRET of the API. When set, Submit and Wait refuses a resume call whose Standard Webhooks signature does not match.',
		},
	];

	authenticate: IAuthenticateGeneric = {
		type: 'generic',
		properties: {
			headers: {
				Authorization: '=Bearer {{$credentials.apiToken}}',
			},
		},
	};

	test: ICredentialTestRequest = {
		request: {
			baseURL: '={{$credentials.baseUrl.replace(/\\/+$/, "")}}',
			url: '/v1/providers',
			method: 'GET',
		},
	};
}
