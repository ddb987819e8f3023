import { createHmac, timingSafeEqual } from 'crypto';

/** A notification older or newer than this (seconds) is refused, as Standard Webhooks advises. */
export const TOLERANCE_S = 300;

function header(headers: Record<string, unknown>, name: string): string | undefined {
	const value = headers[name.toLowerCase()];
	return Array.isArray(value) ? String(value[0]) : value === undefined ? undefined : String(value);
}

/** The HMAC key of a `whsec_<base64>` secret, decoded the way Key4U Jobs (providers/webhooks.py) does. */
function secretKey(secret: string): Buffer {
	const raw = secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret;
	if (/^[A-Za-z0-9+/]+={0,2}$/.test(raw) && raw.length % 4 === 0) return Buffer.from(raw, 'base64');
	return Buffer.from(raw, 'utf8');
}

export function sign(secret: string, msgId: string, timestamp: number, body: Buffer): string {
	const mac = createHmac('sha256', secretKey(secret))
		.update(`${msgId}.${timestamp}.`)
		.update(body)
		.digest('base64');
	return `v1,${mac}`;
}

/**
 * Why a delivery fails the Standard Webhooks check (`webhook-signature: v1,<base64 HMAC-SHA256 of
 * "{webhook-id}.{webhook-timestamp}.{body}">`), or undefined when it passes. The body must be the
 * raw bytes received: re-serialising parsed JSON would change them.
 */
export function verifyProblem(
	secret: string,
	headers: Record<string, unknown>,
	body: Buffer,
	nowS: number,
): string | undefined {
	const msgId = header(headers, 'webhook-id');
	const stamp = header(headers, 'webhook-timestamp');
	const signatures = header(headers, 'webhook-signature');
	if (!msgId || !stamp || !signatures)
		return 'missing webhook-id, webhook-timestamp or webhook-signature';
	const timestamp = Number(stamp);
	if (!Number.isInteger(timestamp)) return 'webhook-timestamp is not a number';
	if (Math.abs(nowS - timestamp) > TOLERANCE_S)
		return `webhook-timestamp is more than ${TOLERANCE_S} s away from now`;
	const expected = Buffer.from(sign(secret, msgId, timestamp, body));
	const match = signatures
		.split(' ')
		.map((part) => Buffer.from(part))
		.some((got) => got.length === expected.length && timingSafeEqual(got, expected));
	return match ? undefined : 'bad webhook signature';
}
