import { UsageError } from './args.ts';

export interface ClientOpts {
  controller: string;
  token: string | undefined;
}

export const DEFAULT_CONTROLLER = 'http://127.0.0.1:7070';

/** Calls the controller's REST API; any failure becomes one line naming the cause (and the server's message). */
export async function call(o: ClientOpts, method: string, path: string, body?: unknown): Promise<any> {
  let base: URL;
  try {
    base = new URL(o.controller);
  } catch {
    throw new UsageError(`--controller must be a URL like ${DEFAULT_CONTROLLER}, got "${o.controller}"`);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new UsageError(`--controller must be an http or https URL, got "${o.controller}"`);
  if (!o.token) throw new UsageError('admin token required: pass --token or set OUTPOST_ADMIN_TOKEN');
  const root = o.controller.replace(/\/+$/, '');
  let res: Response;
  let text: string;
  try {
    res = await fetch(`${root}${path}`, {
      method,
      headers: { authorization: `Bearer ${o.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
      redirect: 'manual',
    });
    text = await res.text();
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    const why = e.name === 'TimeoutError' ? 'no answer within 30 s' : (e.cause?.code ?? e.cause?.message ?? e.message);
    throw new Error(`cannot reach controller at ${root}: ${why}`);
  }
  let json: any;
  try {
    json = text ? JSON.parse(text) : {};
  } catch {
    throw new Error(`${root} answered HTTP ${res.status} with a body that is not JSON; is it an Outpost controller?`);
  }
  const message = typeof json?.error?.message === 'string' ? json.error.message : text.slice(0, 200);
  if (res.status === 401) throw new Error(`the controller refused the admin token (HTTP 401): check --token or OUTPOST_ADMIN_TOKEN`);
  if (!res.ok) throw new Error(`controller answered HTTP ${res.status}: ${message}`);
  return json;
}
