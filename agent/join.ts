import type { Store } from '../plugins/sdk/store.ts';
import type { AgentState } from './state.ts';

/** Enrolls with a join token and stores the credential; the token itself is never stored. */
export async function join(state: Store<AgentState>, opts: { controller: string; token: string; name: string; labels: Record<string, string>; address?: string; local?: boolean }): Promise<{ nodeId: string }> {
  const base = opts.controller.replace(/\/+$/, '');
  let res: Response;
  try {
    res = await fetch(`${base}/api/v1/enroll`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token: opts.token, name: opts.name, labels: opts.labels, address: opts.address, local: opts.local }),
      signal: AbortSignal.timeout(15_000),
    });
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    throw new Error(`cannot reach controller at ${base}: ${e.cause?.code ?? e.message}`);
  }
  const body = (await res.json().catch(() => ({}))) as { nodeId?: string; credential?: string; error?: { message?: string } };
  if (res.status !== 201 || !body.nodeId || !body.credential) throw new Error(`enrollment refused: ${body.error?.message ?? `HTTP ${res.status}`}`);
  await state.update((d) => {
    d.controller = base;
    d.nodeId = body.nodeId!;
    d.name = opts.name;
    d.credential = body.credential!;
  });
  return { nodeId: body.nodeId };
}
