import type { INodeProperties } from 'n8n-workflow';

const SUBMITS = ['submit', 'submitAndWait'];
const BY_ID = ['get', 'cancel', 'retry'];

export const properties: INodeProperties[] = [
	{
		displayName: 'Operation',
		name: 'operation',
		type: 'options',
		noDataExpression: true,
		options: [
			{
				name: 'Cancel',
				value: 'cancel',
				action: 'Cancel a job',
				description: 'Stop a job that has not finished',
			},
			{
				name: 'Get',
				value: 'get',
				action: 'Get a job',
				description: 'The job as it is now, with its stored assets',
			},
			{
				name: 'Retry',
				value: 'retry',
				action: 'Retry a failed job',
				description: 'Submit a failed job again as a new attempt',
			},
			{
				name: 'Submit',
				value: 'submit',
				action: 'Submit a job',
				description: 'Create a job and return at once with its ID and status URL',
			},
			{
				name: 'Submit and Wait',
				value: 'submitAndWait',
				action: 'Submit and wait for the result',
				description:
					'Create the job (one batch for several items), park the execution and continue when Key4U Jobs calls back',
			},
			{
				name: 'Upload',
				value: 'upload',
				action: 'Upload a file',
				description:
					"Store an item's binary file in Key4U Jobs and return its reference (k4u://uploads/...) for a job's input",
			},
		],
		default: 'submitAndWait',
	},
	{
		displayName: 'Provider Name or ID',
		name: 'provider',
		type: 'options',
		typeOptions: { loadOptionsMethod: 'getProviders' },
		default: '',
		required: true,
		description:
			'Provider family, from GET /v1/providers. Choose from the list, or specify an ID using an <a href="https://docs.n8n.io/code/expressions/">expression</a>.',
		displayOptions: { show: { operation: SUBMITS } },
	},
	{
		displayName: 'Provider Operation Name or ID',
		name: 'providerOperation',
		type: 'options',
		typeOptions: { loadOptionsMethod: 'getOperations', loadOptionsDependsOn: ['provider'] },
		default: '',
		description:
			'Operation of the provider, from GET /v1/providers (empty = its default). Choose from the list, or specify an ID using an <a href="https://docs.n8n.io/code/expressions/">expression</a>.',
		displayOptions: { show: { operation: SUBMITS } },
	},
	{
		displayName: 'Input Mode',
		name: 'inputMode',
		type: 'options',
		options: [
			{ name: 'JSON', value: 'json' },
			{ name: 'Fields', value: 'fields' },
		],
		default: 'json',
		description: 'Give the operation input as one JSON object or as name/value fields',
		displayOptions: { show: { operation: SUBMITS } },
	},
	{
		displayName: 'Input (JSON)',
		name: 'inputJson',
		type: 'json',
		default: '{\n  "prompt": ""\n}',
		description: "The input object; GET /v1/providers lists each operation's JSON schema",
		displayOptions: { show: { operation: SUBMITS, inputMode: ['json'] } },
	},
	{
		displayName: 'Input Fields',
		name: 'inputFields',
		type: 'fixedCollection',
		typeOptions: { multipleValues: true },
		default: {},
		placeholder: 'Add Field',
		description: 'Each field becomes a top-level key of the input (values are sent as text)',
		displayOptions: { show: { operation: SUBMITS, inputMode: ['fields'] } },
		options: [
			{
				name: 'field',
				displayName: 'Field',
				values: [
					{ displayName: 'Name', name: 'name', type: 'string', default: '' },
					{ displayName: 'Value', name: 'value', type: 'string', default: '' },
				],
			},
		],
	},
	{
		displayName: 'Binary Inputs',
		name: 'binaryInputs',
		type: 'fixedCollection',
		typeOptions: { multipleValues: true },
		default: {},
		placeholder: 'Add Binary Input',
		description:
			'Input fields whose value is a binary file of the item: each is uploaded first (an upload of the same bytes is reused) and the field set to its reference',
		displayOptions: { show: { operation: SUBMITS } },
		options: [
			{
				name: 'input',
				displayName: 'Binary Input',
				values: [
					{
						displayName: 'Input Field',
						name: 'field',
						type: 'string',
						default: 'image',
						description: 'The input field to set (a.b for a field inside an object)',
					},
					{
						displayName: 'Input Binary Field',
						name: 'binaryProperty',
						type: 'string',
						default: 'data',
						hint: 'The name of the input binary field containing the file',
					},
				],
			},
		],
	},
	{
		displayName: 'Input Binary Field',
		name: 'binaryPropertyName',
		type: 'string',
		default: 'data',
		required: true,
		hint: 'The name of the input binary field containing the file to be uploaded',
		displayOptions: { show: { operation: ['upload'] } },
	},
	{
		displayName: 'Wait Limit (Minutes)',
		name: 'waitLimitMinutes',
		type: 'number',
		typeOptions: { minValue: 0 },
		default: 120,
		description:
			'Resume without a callback after this long (0 = wait for the callback only). The items then carry wait_timed_out: true and the job ID; fetch them with a Get operation.',
		displayOptions: { show: { operation: ['submitAndWait'] } },
	},
	{
		displayName: 'Job ID',
		name: 'jobId',
		type: 'string',
		default: '={{ $json.id }}',
		required: true,
		description: 'The job to act on (job_...)',
		displayOptions: { show: { operation: BY_ID } },
	},
	{
		displayName: 'Additional Fields',
		name: 'additionalFields',
		type: 'collection',
		placeholder: 'Add Field',
		default: {},
		displayOptions: { show: { operation: SUBMITS } },
		options: [
			{
				displayName: 'Callback URL',
				name: 'callbackUrl',
				type: 'string',
				default: '',
				description:
					"Where Key4U Jobs POSTs the signed notification (Submit only: Submit and Wait uses the execution's resume URL)",
			},
			{
				displayName: 'Idempotency Key',
				name: 'idempotencyKey',
				type: 'string',
				default: '',
				description:
					'The same key with the same request returns the same job instead of creating (and paying for) another; build it from the execution ID and the item index',
			},
			{
				displayName: 'Metadata (JSON)',
				name: 'metadataJson',
				type: 'json',
				default: '{}',
				description: 'Yours: stored with the job and echoed back untouched',
			},
		],
	},
];
