import { encodeFrame, encodeHeartbeatReply, type Frame, type FrameError } from '../protocol/frame.ts';
import { OP } from '../protocol/ops.ts';
import { parseAuthBody, type AuthBody } from '../protocol/auth-body.ts';
import { splitInt32s } from '../go/strconv.ts';
import type { PushBytes } from '../protocol/push-bytes.ts';
import type { CloseReason, Transport } from './transport.ts';
import type { Room } from './room.ts';

/** Numbers, not strings: the state is read once per connection per push on the fan-out path. */
export const STATE = { handshake: 0, auth: 1, registering: 2, open: 3, closed: 4 } as const;
type State = (typeof STATE)[keyof typeof STATE];

/** Frames a client may send while its auth is in flight; goim reads them after op 8, so they wait. */
const MAX_QUEUED_FRAMES = 16;
/** Pushes held for a registered connection until its op 8 is written. */
const MAX_HELD_PUSHES = 64;
/** Ops one connection may watch; sub frames past it add nothing (memory stays bounded). */
export const MAX_WATCH = 1024;

/** What a session asks of the gateway that owns it. */
export interface SessionHost {
  now(): number;
  readonly heartbeatTimeoutMs: number;
  /** JWT check, registration in the tables and the awaited hook; false when the session must not get op 8. */
  authenticate(s: Session, auth: AuthBody): Promise<boolean>;
  changeRoom(s: Session, roomId: string): void;
  /** The room's online count for op 3 (cluster-wide when known). */
  online(s: Session): number;
  onAuthRefused(s: Session, why: string): void;
  onClosed(s: Session, reason: CloseReason): void;
  onDropped(s: Session, messages: number): void;
}

/**
 * One client connection's protocol state (goim's Channel plus the read loop of server_tcp.go /
 * server_websocket.go), independent of the transport carrying it.
 */
export class Session {
  state: State = STATE.handshake;
  /** In the gateway's tables (from registration until close). */
  registered = false;
  key = '';
  mid = '0';
  platform = '';
  room: Room | undefined;
  /** The accepts/watch set; shared empty set until the client names one. */
  watch: Set<number> = NO_OPS;
  /** Handshake deadline, then heartbeat deadline (ms since epoch). */
  deadline: number;
  /** The count the last op 3 carried; goim keeps sending it after the room is left. */
  lastOnline = 0;
  /** Slow-consumer accounting (see gateway/slow-consumers.ts). */
  overSince = 0;
  droppedSinceLog = 0;
  lastDropLog = 0;
  private queued: Frame[] | undefined;
  private held: PushBytes[] | undefined;

  constructor(
    readonly transport: Transport,
    private readonly host: SessionHost,
    handshakeTimeoutMs: number,
  ) {
    this.deadline = host.now() + handshakeTimeoutMs;
  }

  /** Handles one frame; false when the session is closed and the reader should stop. */
  onFrame(f: Frame): boolean {
    switch (this.state) {
      case STATE.handshake:
        // goim logs and skips anything before op 7.
        if (f.op === OP.auth) this.startAuth(f);
        break;
      case STATE.auth:
      case STATE.registering:
        this.queued ??= [];
        if (this.queued.length >= MAX_QUEUED_FRAMES) this.close('flood');
        else this.queued.push({ ...f, body: Buffer.from(f.body) });
        break;
      case STATE.open:
        this.operate(f);
        break;
    }
    return this.state !== STATE.closed;
  }

  onFrameError(_err: FrameError): void {
    this.close('frame');
  }

  /** A push for this session: written when open, held until op 8 while registering. */
  deliver(p: PushBytes): boolean {
    if (this.state === STATE.open) {
      if (this.transport.push(p)) return true;
      this.host.onDropped(this, p.count);
      return false;
    }
    if (this.state === STATE.registering) {
      this.held ??= [];
      if (this.held.length < MAX_HELD_PUSHES) {
        this.held.push(p);
        return true;
      }
      this.host.onDropped(this, p.count);
    }
    return false;
  }

  close(reason: CloseReason): void {
    if (this.state === STATE.closed) return;
    this.state = STATE.closed;
    this.queued = this.held = undefined;
    this.host.onClosed(this, reason);
    if (reason !== 'peer') this.transport.close(reason);
  }

  setWatch(ops: number[]): void {
    if (ops.length === 0) return;
    if (this.watch === NO_OPS) this.watch = new Set();
    for (const op of ops) if (this.watch.size < MAX_WATCH) this.watch.add(op);
  }

  private startAuth(f: Frame): void {
    const auth = parseAuthBody(f.body);
    if ('error' in auth) {
      // goim: Connect fails, no reply, the connection is closed.
      this.host.onAuthRefused(this, auth.error);
      this.close('auth');
      return;
    }
    this.state = STATE.auth;
    const { ver, seq } = f;
    this.host.authenticate(this, auth).then(
      (ok) => {
        if (!ok || this.state !== STATE.registering) return;
        this.reply(encodeFrame(ver, OP.authReply, seq));
        this.state = STATE.open;
        this.deadline = this.host.now() + this.host.heartbeatTimeoutMs;
        const held = this.held;
        const queued = this.queued;
        this.held = this.queued = undefined;
        for (const p of held ?? []) if (!this.deliver(p)) break;
        for (const q of queued ?? []) if (!this.onFrame(q)) break;
      },
      (err) => {
        this.host.onAuthRefused(this, (err as Error)?.message ?? String(err));
        this.close('auth');
      },
    );
  }

  /** goim's Operate plus the heartbeat branch of the read loop; every reply echoes ver and seq. */
  private operate(f: Frame): void {
    const { ver, seq, op, body } = f;
    switch (op) {
      case OP.heartbeat: {
        this.deadline = this.host.now() + this.host.heartbeatTimeoutMs;
        this.lastOnline = this.host.online(this);
        this.reply(encodeHeartbeatReply(ver, seq, this.lastOnline, OP.heartbeatReply));
        return;
      }
      case OP.changeRoom:
        this.host.changeRoom(this, body.toString('utf8'));
        this.reply(encodeFrame(ver, OP.changeRoomReply, seq, body));
        return;
      case OP.sub:
      case OP.unsub: {
        // A list that does not parse is ignored silently; the reply echoes the body all the same.
        const ops = splitInt32s(body.toString('utf8'));
        if (ops && op === OP.sub) this.setWatch(ops);
        else if (ops && this.watch !== NO_OPS) for (const o of ops) this.watch.delete(o);
        this.reply(encodeFrame(ver, op === OP.sub ? OP.subReply : OP.unsubReply, seq, body));
        return;
      }
      default:
        // goim forwards it to logic (which only logs it) and echoes the same op with no body.
        this.reply(encodeFrame(ver, op, seq));
    }
  }

  private reply(frame: Buffer): void {
    if (!this.transport.reply(frame)) this.host.onDropped(this, 1);
  }
}

const NO_OPS: Set<number> = new Set();
