import { UsageError } from './args.ts';

export interface ClientOpts {
  controller: string;
  token: string | undefined;
}

/** Calls the controller's REST API; any non-2xx becomes one line naming the server's message. */
export async function call(o: ClientOpts, method: string, path: string, body?: unknown): Promise<any> {
  if (!o.token) throw new UsageError('admin token required: pass --token or set OUTPOST_ADMIN_TOKEN');
  let res: Response;
  try {
    res = await fetch(`${o.controller.replace(/\/+$/, '')}${path}`, {
      method,
      headers: { authorization: `Bearer ${o.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    throw new Error(`cannot reach controller at ${o.controller}: ${e.cause?.code ?? e.message}`);
  }
  const text = await res.text();
  let json: any;
  try {
    json = text ? JSON.parse(text) : {};
  } catch {
    throw new Error(`controller answered HTTP ${res.status} with a body that is not JSON`);
  }
  if (!res.ok) throw new Error(`controller answered HTTP ${res.status}: ${json?.error?.message ?? text.slice(0, 200)}`);
  return json;
}
