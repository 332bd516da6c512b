/**
 * The internal endpoint other controllers call (POST /internal/v1/peer): signed with the cluster
 * secret (runtime/cluster/peer-sign.ts), refused with 401 otherwise, and when played again. Mounted only when controllers
 * share a database; on files the path is unknown (404). Not for clients: docs/api.md.
 */
import type HyperExpress from 'hyper-express';
import type { Log } from '../../plugins/sdk/log.ts';
import { HttpError, restError } from '../../plugins/sdk/http.ts';
import { PEER_PATH } from '../../runtime/cluster/peer-client.ts';
import { decodePeerBody, PEER_MAX_BODY } from '../../runtime/cluster/peer-codec.ts';
import { PeerReplayGuard, verifyPeerCall } from '../../runtime/cluster/peer-sign.ts';
import { encodeReply, PeerOp, type PeerReply } from './protocol.ts';
import { describeIssues } from '../../plugins/sdk/validate.ts';
import { readBody } from '../../runtime/http-request.ts';

export interface PeerEndpointDeps {
  secret: Buffer;
  handle(op: PeerOp, from: string): Promise<unknown>;
  log: Log;
  observe?(op: string, status: number): void;
}

export function mountPeerEndpoint(app: HyperExpress.Server, d: PeerEndpointDeps): void {
  const fail = (res: HyperExpress.Response, status: number, message: string) => {
    d.observe?.('refused', status);
    res.status(status).json(restError(status, message).json);
  };
  const replays = new PeerReplayGuard();
  app.post(PEER_PATH, async (req, res) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > PEER_MAX_BODY) return fail(res, 413, `body too large: ${declared} bytes, limit ${PEER_MAX_BODY}`);
    // Counted as it streams: a chunked body without a length is not buffered past the limit.
    const body = await readBody(req, PEER_MAX_BODY);
    if (body === null) return fail(res, 413, `body too large: limit ${PEER_MAX_BODY} bytes`);
    const v = verifyPeerCall(d.secret, req.headers as Record<string, string>, body, Date.now(), replays);
    if (!v.ok) {
      d.log.warn({ ip: req.ip, why: v.why }, 'refused a call meant for another controller');
      return fail(res, 401, 'controller-to-controller call refused: missing, stale, replayed or bad signature');
    }
    const parsed = (() => {
      try {
        const r = PeerOp.safeParse(decodePeerBody(body));
        return r.success ? r.data : new Error(describeIssues(r.error));
      } catch (err) {
        return err as Error;
      }
    })();
    if (parsed instanceof Error) return fail(res, 400, `malformed call: ${parsed.message}`);
    let reply: PeerReply;
    try {
      reply = { ok: true, result: (await d.handle(parsed, v.from)) ?? null };
    } catch (err) {
      reply = { ok: false, error: (err as Error)?.message ?? String(err), ...(err instanceof HttpError ? { status: err.status } : {}) };
    }
    let out: Buffer;
    try {
      out = encodeReply(reply);
    } catch (err) {
      out = encodeReply({ ok: false, error: `the answer cannot be sent back: ${(err as Error).message}` });
    }
    d.observe?.(parsed.op, 200);
    res.status(200).header('content-type', 'application/octet-stream').send(out);
  });
}
