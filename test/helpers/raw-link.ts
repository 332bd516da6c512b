/**
 * A hand-driven agent link for tests: speaks the wire protocol directly (DESIGN §4) so a test can send
 * what a real agent never would, or race two connections, against a real controller.
 */
import WebSocket from 'ws';

export interface RawLink {
  ws: WebSocket;
  /** Highest seq the controller acknowledged on this connection. */
  acked(): number;
  send(msg: object | string): void;
  /** Sends hello and resolves with the controller's welcome. */
  hello(nodeId: string): Promise<{ lastSeq: number; config: Record<string, unknown> }>;
  /** Resolves with the close code once the controller closes the connection. */
  closed: Promise<number>;
  /** The same close, with the reason text the controller gave. */
  closedWith: Promise<{ code: number; reason: string }>;
}

export function openRawLink(controllerUrl: string, credential: string): Promise<RawLink> {
  const ws = new WebSocket(controllerUrl.replace(/^http/, 'ws') + '/api/v1/link', { headers: { authorization: `Bearer ${credential}` } });
  let acked = 0;
  const waiters: Array<(msg: any) => void> = [];
  ws.on('message', (m, isBinary) => {
    // Binary frames are plugin messages (runtime/link-codec.ts): tests that want them listen on ws themselves.
    if (isBinary) return;
    const msg = JSON.parse(String(m));
    if (msg.t === 'ack') acked = Math.max(acked, msg.seq);
    for (const w of waiters.splice(0)) w(msg);
  });
  const closedWith = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  const closed = closedWith.then((c) => c.code);
  const send = (msg: object | string) => ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg));
  return new Promise((resolve, reject) => {
    ws.on('error', reject);
    ws.on('open', () =>
      resolve({
        ws,
        acked: () => acked,
        send,
        closed,
        closedWith,
        hello(nodeId) {
          const welcome = new Promise<any>((res) => {
            const wait = (msg: any) => (msg.t === 'welcome' ? res(msg) : waiters.push(wait));
            waiters.push(wait);
          });
          send({ t: 'hello', nodeId, version: 'test', plugins: [], labels: {}, address: '127.0.0.1' });
          return welcome;
        },
      }),
    );
  });
}

/** A well-formed server-stats sample taken at ts. */
export function fakeSample(ts: number) {
  return {
    ts,
    cpu: { percent: 1, cores: 1 },
    memory: { total: 2, used: 1, available: 1, percent: 50, swapTotal: 0, swapUsed: 0 },
    disk: null,
    load: [0, 0, 0],
    network: { rxBytes: 0, txBytes: 0, rxPerSec: 0, txPerSec: 0 },
    uptime: 1,
  };
}

/** The report message carrying sample number seq of a series starting at t0. */
export function sampleReport(seq: number, t0: number, data: unknown = fakeSample(t0 + seq)) {
  return { t: 'report', seq, plugin: 'server-stats', type: 'sample', data, ts: t0 + seq };
}
