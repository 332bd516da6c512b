import WebSocket from 'ws';
import { backoffDelayMs, type BackoffConfig } from '../plugins/sdk/backoff.ts';
import { LINK_LIMITS, LinkClose, closeReason, linkPluginStatus, overBytes, type AgentMessage, type ControllerMessage, type PluginStatus } from '../runtime/link.ts';
import type { Log } from '../plugins/sdk/log.ts';
import type { ChannelHub, ChannelPeer } from '../runtime/channels.ts';
import { decodeBinaryMessage, LinkCodecError } from '../runtime/link-codec.ts';
import type { Capabilities } from '../plugins/sdk/capabilities.ts';
import { parseWireJson } from '../plugins/sdk/json.ts';
import type { AgentOutbox } from './outbox.ts';
import { LinkLiveness } from './link-liveness.ts';

export interface LinkClientOptions {
  controller: string;
  nodeId: string;
  credential: string;
  version: string;
  labels: Record<string, string>;
  address: string;
  capabilities: Capabilities;
  backoff: BackoffConfig;
  window: number;
  outbox: AgentOutbox;
  log: Log;
  plugins(): PluginStatus[];
  onConfig(plugin: string, config: unknown): Promise<void>;
  onWelcome(config: Record<string, unknown>): Promise<void>;
  onCommand(plugin: string, action: string, args: unknown, deadline: number): Promise<unknown>;
  /** Best-effort plugin messages both ways; the controller is node id '' here. */
  channels: ChannelHub;
}

/** The agent end of the link: reconnects with capped backoff and jitter, heartbeats, replays the outbox in order. */
export class LinkClient {
  private ws: WebSocket | undefined;
  private attempt = 0;
  private hbTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private hbSeq = 0;
  private sentUpTo = 0;
  private ackedUpTo = 0;
  private welcomed = false;
  private stopped = false;
  /** Until a welcome says otherwise: the controller's default heartbeat interval. */
  private hbIntervalMs = 2000;
  private readonly liveness = new LinkLiveness(
    () => {
      if (this.ws?.readyState === WebSocket.OPEN) this.ws.ping();
    },
    (silentMs) => this.onDead(silentMs),
  );
  state: 'connecting' | 'connected' | 'disconnected' = 'disconnected';
  lastError: string | undefined;
  /** Links given up because the controller stopped answering. */
  deadLinks = 0;
  /** Every write's callback: the socket took some bytes out, so messages waiting for it may go. */
  private readonly written = (): void => this.o.channels.drained('');
  private firstWelcome!: () => void;
  /** Resolves at the first welcome: the controller has this node's hello, so its commands reach it. */
  readonly ready = new Promise<void>((resolve) => (this.firstWelcome = resolve));

  constructor(private readonly o: LinkClientOptions) {}

  start(): void {
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.hbTimer);
    this.liveness.stop();
    this.ws?.close(1000, 'agent stopping');
  }

  /** Called after a report is written to the outbox: sends it now if the window allows. */
  kick(): void {
    if (this.welcomed) this.flush();
  }

  private connect(): void {
    if (this.stopped) return;
    this.state = 'connecting';
    const url = this.o.controller.replace(/^http/, 'ws').replace(/\/+$/, '') + '/api/v1/link';
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${this.o.credential}` }, handshakeTimeout: 10_000, maxPayload: 16 * 1024 * 1024 });
    this.ws = ws;
    const peer: ChannelPeer = {
      buffered: () => ws.bufferedAmount,
      write: (frame) => {
        ws.send(frame.data, { binary: frame.binary }, this.written);
        return true;
      },
    };
    ws.on('open', () => {
      this.o.channels.attach('', peer);
      this.state = 'connected';
      this.lastError = undefined;
      this.liveness.start(this.hbIntervalMs);
      this.send({ t: 'hello', nodeId: this.o.nodeId, version: this.o.version, plugins: linkPluginStatus(this.o.plugins()), labels: this.o.labels, address: this.o.address, capabilities: this.o.capabilities });
    });
    ws.on('message', (data, isBinary) => {
      this.liveness.heard();
      if (isBinary) this.onBinary(ws, data as Buffer);
      else void this.onMessage(String(data));
    });
    ws.on('pong', () => this.liveness.heard());
    ws.on('unexpected-response', (_req, res) => {
      this.lastError = res.statusCode === 401 ? 'controller rejected this agent credential (node deleted or credential revoked?)' : `controller answered HTTP ${res.statusCode}`;
      ws.terminate();
    });
    ws.on('error', (err) => {
      this.lastError = (err as Error & { code?: string }).code ?? err.message;
    });
    ws.on('close', (code, reason) => {
      this.o.channels.detach('', peer);
      if (this.ws !== ws) return;
      // The controller says why it closed a link it refused (protocol violation, replaced, revoked).
      if (code >= 4000 && reason.length) this.lastError = `controller closed the link (${code}): ${reason.toString()}`;
      this.welcomed = false;
      this.state = 'disconnected';
      clearInterval(this.hbTimer);
      this.liveness.stop();
      if (code === LinkClose.revoked) this.lastError = 'controller revoked this node';
      if (this.stopped) return;
      const delay = backoffDelayMs(this.attempt++, this.o.backoff);
      this.o.log.warn({ error: this.lastError, code, retryInMs: delay }, 'link down; reconnecting');
      this.retryTimer = setTimeout(() => this.connect(), delay);
    });
  }

  /** The controller stopped answering: drop the connection (the close handler reconnects with backoff). */
  private onDead(silentMs: number): void {
    this.deadLinks += 1;
    this.state = 'disconnected';
    this.lastError = `controller did not answer for ${silentMs} ms (more than 2 heartbeat intervals of ${this.hbIntervalMs} ms); link considered dead`;
    this.ws?.terminate();
  }

  /** Control messages go straight to the socket, never behind best-effort ones waiting in the channel ring. */
  private send(msg: AgentMessage): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg), this.written);
  }

  /** A binary frame: a plugin message holding Buffers; a malformed one closes the link as the controller would. */
  private onBinary(ws: WebSocket, frame: Buffer): void {
    try {
      this.o.channels.receive('', decodeBinaryMessage(frame));
    } catch (err) {
      if (!(err instanceof LinkCodecError)) throw err;
      this.o.log.warn({ reason: err.message }, 'malformed binary frame from the controller; closing the link');
      ws.close(LinkClose.protocol, closeReason(err.message));
    }
  }

  private async onMessage(raw: string): Promise<void> {
    let msg: ControllerMessage;
    try {
      msg = parseWireJson(raw) as ControllerMessage;
    } catch {
      return;
    }
    switch (msg.t) {
      case 'welcome':
        this.attempt = 0;
        await this.o.outbox.ack(msg.lastSeq);
        await this.o.outbox.bumpSeq(msg.lastSeq);
        this.ackedUpTo = msg.lastSeq;
        this.sentUpTo = msg.lastSeq;
        await this.o.onWelcome(msg.config).catch((err) => this.o.log.error({ err: (err as Error).message }, 'applying welcome config failed'));
        this.welcomed = true;
        this.hbIntervalMs = msg.hbInterval;
        this.liveness.start(msg.hbInterval);
        this.firstWelcome();
        this.startHeartbeat(msg.hbInterval);
        this.flush();
        break;
      case 'ack':
        // Acknowledged so it is not replayed forever, but not applied: the report did not fit the controller's schema.
        if (msg.error) this.o.log.error({ seq: msg.seq, err: msg.error }, 'controller refused a report');
        this.ackedUpTo = Math.max(this.ackedUpTo, msg.seq);
        await this.o.outbox.ack(msg.seq);
        this.flush();
        break;
      case 'msg':
        this.o.channels.receive('', msg);
        break;
      case 'config':
        await this.o.onConfig(msg.plugin, msg.config).catch((err) => this.o.log.error({ plugin: msg.plugin, err: (err as Error).message }, 'config push rejected'));
        break;
      case 'command': {
        try {
          const data = await this.o.onCommand(msg.plugin, msg.action, msg.args, msg.deadline);
          // A result over the link's limit would get the whole link closed: answer the command with an error instead.
          if (overBytes(JSON.stringify(data ?? null), LINK_LIMITS.dataBytes)) throw new Error(`result of ${msg.plugin}.${msg.action} is over the link's ${LINK_LIMITS.dataBytes} bytes`);
          this.send({ t: 'reply', id: msg.id, ok: true, data });
        } catch (err) {
          this.send({ t: 'reply', id: msg.id, ok: false, error: String((err as Error)?.message).slice(0, LINK_LIMITS.error) });
        }
        break;
      }
    }
  }

  private startHeartbeat(intervalMs: number): void {
    clearInterval(this.hbTimer);
    const beat = () => this.send({ t: 'hb', seq: ++this.hbSeq, ts: Date.now(), summary: { plugins: linkPluginStatus(this.o.plugins()), outbox: this.o.outbox.size() } });
    beat();
    this.hbTimer = setInterval(beat, intervalMs);
  }

  private flush(): void {
    const room = this.o.window - (this.sentUpTo - this.ackedUpTo);
    if (room <= 0) return;
    for (const it of this.o.outbox.after(this.sentUpTo, room)) {
      this.send({ t: 'report', seq: it.seq, plugin: it.plugin, type: it.type, data: it.data, ts: it.ts });
      this.sentUpTo = it.seq;
    }
  }
}
