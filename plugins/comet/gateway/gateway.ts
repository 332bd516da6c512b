import { randomUUID } from 'node:crypto';
import type { Log } from '../../sdk/index.ts';
import { needPush } from '../protocol/ops.ts';
import { pushBytes, type PushBytes, type PushMessage } from '../protocol/push-bytes.ts';
import type { AuthBody } from '../protocol/auth-body.ts';
import { ChangeFeed, type ChangeSink, type ConnTuple, type Snapshot } from './change-feed.ts';
import { PacedBroadcasts } from './paced-broadcast.ts';
import { Room, type RoomBatching } from './room.ts';
import { Session, STATE, type SessionHost } from './session.ts';
import { GatewayStats } from './stats.ts';
import type { TokenCheck } from './jwt.ts';
import type { CloseReason, Transport } from './transport.ts';

export interface GatewayOptions {
  handshakeTimeoutMs: number;
  /** goim: logic's heartbeat × heartbeatMax (4 min × 2). */
  heartbeatTimeoutMs: number;
  /** Per-connection limit of bytes waiting to be sent; WebSocket listeners pass it to uWS as maxBackpressure. */
  sendBufferBytes: number;
  /** A connection over the limit this long is closed. */
  slowCloseMs: number;
  roomBatch: RoomBatching;
  maxConnections: number;
  /** Connections not yet past op 8. */
  maxHandshaking: number;
  feedIntervalMs: number;
  tokenCheck?: TokenCheck;
}

/** A registered connection, as the registration hook sees it. */
export interface ConnInfo {
  key: string;
  mid: string;
  room: string;
  platform: string;
  ip: string;
  transport: 'ws' | 'tcp';
}

export interface GatewayHooks {
  /** Awaited after the connection is in the local tables and before op 8 is written; a throw refuses it. */
  onRegister?(conn: ConnInfo): Promise<void> | void;
  /** Receives batched connect/disconnect/room deltas; op 8 waits for the batch carrying the connection. */
  onChanges?: ChangeSink;
}

/** How often, at most, one slow connection is logged. */
const DROP_LOG_EVERY_MS = 10_000;

/**
 * The agent half of comet: goim's buckets (key → connection, rooms, ip counts) in one process, the
 * delivery of pushes by key, mid, room and to all, timeouts and slow consumers. Transports
 * (listeners/) hand it connections; the agent wiring feeds it pushes and forwards its change feed.
 */
export class Gateway implements SessionHost {
  readonly stats = new GatewayStats();
  readonly feed: ChangeFeed;
  readonly heartbeatTimeoutMs: number;
  private readonly sessions = new Set<Session>();
  private readonly byKey = new Map<string, Session>();
  private readonly byMid = new Map<string, Set<Session>>();
  private readonly rooms = new Map<string, Room>();
  private readonly ipCounts = new Map<string, number>();
  private readonly slow = new Set<Session>();
  private readonly paced = new PacedBroadcasts();
  private readonly sweeper: NodeJS.Timeout;
  private registered = 0;
  private handshaking = 0;
  private closing = false;
  readonly now: () => number;

  constructor(
    readonly opts: GatewayOptions,
    private readonly log: Log,
    private readonly hooks: GatewayHooks = {},
    now: () => number = Date.now,
  ) {
    this.now = now;
    this.heartbeatTimeoutMs = opts.heartbeatTimeoutMs;
    this.feed = new ChangeFeed(hooks.onChanges, opts.feedIntervalMs, () => this.counts(), (err) => this.log.warn({ err: (err as Error)?.message ?? String(err) }, 'comet change feed not delivered'));
    const every = Math.max(20, Math.min(1000, Math.floor(Math.min(opts.handshakeTimeoutMs, opts.heartbeatTimeoutMs, opts.slowCloseMs) / 4)));
    this.sweeper = setInterval(() => this.sweep(), every).unref();
  }

  /** A new connection from a listener; undefined (and closed) when a limit is reached. */
  open(transport: Transport): Session | undefined {
    if (this.closing || this.sessions.size >= this.opts.maxConnections || this.handshaking >= this.opts.maxHandshaking) {
      this.stats.refused++;
      this.stats.closed.full++;
      transport.close('full');
      return undefined;
    }
    const s = new Session(transport, this, this.opts.handshakeTimeoutMs);
    this.sessions.add(s);
    this.handshaking++;
    this.stats.accepted++;
    return s;
  }

  // ---- delivery -------------------------------------------------------------------------------

  /** goim's PushMsg: each key's connection if it accepts the op. Returns connections written to. */
  pushKeys(keys: readonly string[], op: number, body: Uint8Array): number {
    this.stats.pushes.keys++;
    return this.deliverEach(keys.map((k) => this.byKey.get(k)), op, body);
  }

  /** Every connection of each mid (goim's logic expands mids to keys; same result). */
  pushMids(mids: readonly string[], op: number, body: Uint8Array): number {
    this.stats.pushes.mids++;
    const targets = new Set<Session>();
    for (const mid of mids) for (const s of this.byMid.get(mid) ?? []) targets.add(s);
    return this.deliverEach([...targets], op, body);
  }

  /** Batched per room; accepts are not checked (goim's Room.Push sends to every member). */
  pushRoom(roomId: string, op: number, body: Uint8Array): void {
    this.stats.pushes.room++;
    this.rooms.get(roomId)?.push({ op, body });
  }

  /** goim's Broadcast: every connection that accepts the op, paced at `speed` connections/s when > 0. */
  pushAll(op: number, body: Uint8Array, speed = 0): void {
    this.stats.pushes.all++;
    const p = pushBytes([{ op, body }]);
    const deliver = (s: Session) => {
      if (needPush(op, s.watch) && s.deliver(p)) this.stats.delivered++;
    };
    if (speed > 0 && this.paced.start([...this.sessions], speed, deliver)) return;
    for (const s of this.sessions) deliver(s);
  }

  private deliverEach(targets: ReadonlyArray<Session | undefined>, op: number, body: Uint8Array): number {
    let p: PushBytes | undefined;
    let n = 0;
    for (const s of targets) {
      if (!s || !needPush(op, s.watch)) continue;
      p ??= pushBytes([{ op, body }]);
      if (s.deliver(p)) n++;
    }
    this.stats.delivered += n;
    return n;
  }

  /** A room batch leaves: one buffer for every member, the hot loop of room fan-out. */
  private sendRoom = (room: Room, messages: PushMessage[]): void => {
    const p = pushBytes(messages);
    let n = 0;
    for (const s of room.members) if (s.deliver(p)) n++;
    this.stats.delivered += n * p.count;
  };

  // ---- SessionHost ----------------------------------------------------------------------------

  async authenticate(s: Session, auth: AuthBody): Promise<boolean> {
    if (this.opts.tokenCheck) {
      const why = await this.opts.tokenCheck(auth.token, auth.mid);
      if (why) {
        this.onAuthRefused(s, why);
        s.close('auth');
        return false;
      }
      if (s.state === STATE.closed) return false;
    }
    this.register(s, auth);
    const info: ConnInfo = { key: s.key, mid: s.mid, room: s.room?.id ?? '', platform: s.platform, ip: s.transport.ip, transport: s.transport.kind };
    await Promise.all([this.feed.delivered(), this.hooks.onRegister?.(info)]);
    return s.state === STATE.registering;
  }

  private register(s: Session, auth: AuthBody): void {
    s.key = auth.key || randomUUID();
    s.mid = auth.mid;
    s.platform = auth.platform;
    s.setWatch(auth.accepts);
    s.state = STATE.registering;
    s.registered = true;
    this.handshaking--;
    this.registered++;
    // goim's Bucket.Put: the same key again closes the older connection.
    const old = this.byKey.get(s.key);
    if (old) old.close('kicked');
    this.byKey.set(s.key, s);
    if (isIndexedMid(s.mid)) {
      let set = this.byMid.get(s.mid);
      if (!set) this.byMid.set(s.mid, (set = new Set()));
      set.add(s);
    }
    this.ipCounts.set(s.transport.ip, (this.ipCounts.get(s.transport.ip) ?? 0) + 1);
    if (auth.roomId) this.join(s, auth.roomId);
    this.feed.note(s.key, tupleOf(s));
  }

  changeRoom(s: Session, roomId: string): void {
    this.leave(s);
    if (roomId) this.join(s, roomId);
    this.feed.note(s.key, tupleOf(s));
  }

  online(s: Session): number {
    return s.room ? s.room.online() : s.lastOnline;
  }

  onAuthRefused(s: Session, why: string): void {
    this.stats.authRefused++;
    this.log.info({ ip: s.transport.ip, transport: s.transport.kind, why }, 'comet auth refused');
  }

  onClosed(s: Session, reason: CloseReason): void {
    this.stats.closed[reason]++;
    this.sessions.delete(s);
    this.slow.delete(s);
    if (!s.registered) {
      this.handshaking--;
      return;
    }
    s.registered = false;
    this.registered--;
    if (this.byKey.get(s.key) === s) {
      this.byKey.delete(s.key);
      this.feed.note(s.key, null);
    }
    const mids = this.byMid.get(s.mid);
    if (mids?.delete(s) && mids.size === 0) this.byMid.delete(s.mid);
    this.leave(s);
    const ips = this.ipCounts.get(s.transport.ip) ?? 1;
    if (ips <= 1) this.ipCounts.delete(s.transport.ip);
    else this.ipCounts.set(s.transport.ip, ips - 1);
  }

  onDropped(s: Session, messages: number): void {
    this.stats.dropped += messages;
    s.droppedSinceLog += messages;
    const now = this.now();
    if (!s.overSince) {
      s.overSince = now;
      this.slow.add(s);
    }
    if (now - s.lastDropLog >= DROP_LOG_EVERY_MS) {
      this.log.warn({ key: s.key, ip: s.transport.ip, dropped: s.droppedSinceLog, buffered: s.transport.buffered(), limit: this.opts.sendBufferBytes }, 'comet slow consumer: messages dropped');
      s.lastDropLog = now;
      s.droppedSinceLog = 0;
    }
  }

  // ---- rooms ----------------------------------------------------------------------------------

  private join(s: Session, roomId: string): void {
    let room = this.rooms.get(roomId);
    if (!room) this.rooms.set(roomId, (room = new Room(roomId, this.opts.roomBatch, this.sendRoom)));
    room.members.add(s);
    s.room = room;
  }

  private leave(s: Session): void {
    const room = s.room;
    if (!room) return;
    s.room = undefined;
    room.members.delete(s);
    // goim deletes an emptied room; its pending batch has nobody left to go to.
    if (room.members.size === 0) {
      room.discard();
      this.rooms.delete(room.id);
    }
  }

  /** Cluster-wide counts of this node's rooms, from the controller; rooms it does not name fall back to local counts. */
  setRoomCounts(counts: Iterable<readonly [string, number]>): void {
    const all = new Map(counts);
    for (const room of this.rooms.values()) room.allOnline = all.get(room.id) ?? 0;
  }

  /** Counts of the rooms named only (the controller sends what changed); other rooms keep theirs. */
  updateRoomCounts(counts: Iterable<readonly [string, number]>): void {
    for (const [id, n] of counts) {
      const room = this.rooms.get(id);
      if (room) room.allOnline = n;
    }
  }

  /** Closes the connection holding `key` (the controller found a newer one on another node); 1 if there was one. */
  kick(key: string): number {
    const s = this.byKey.get(key);
    if (!s) return 0;
    s.close('kicked');
    return 1;
  }

  // ---- reading --------------------------------------------------------------------------------

  /** Registered connections (goim counts only authenticated channels) and distinct client IPs. */
  counts(): { conns: number; ips: number; rooms: number; handshaking: number } {
    return { conns: this.registered, ips: this.ipCounts.size, rooms: this.rooms.size, handshaking: this.handshaking };
  }

  /** Local members per room, largest first. */
  roomSizes(limit = Infinity): Array<[string, number]> {
    return [...this.rooms.values()].map((r): [string, number] => [r.id, r.members.size]).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, limit);
  }

  /** Every registered connection, for the controller's periodic resync. */
  snapshot(): Snapshot {
    const conns: ConnTuple[] = [];
    for (const [, s] of this.byKey) conns.push(tupleOf(s));
    return this.feed.snapshot(conns);
  }

  // ---- upkeep ---------------------------------------------------------------------------------

  private sweep(): void {
    const now = this.now();
    for (const s of this.sessions) if (now >= s.deadline) s.close(s.state === STATE.open ? 'heartbeat-timeout' : 'handshake-timeout');
    for (const s of this.slow) {
      if (s.state === STATE.closed) this.slow.delete(s);
      else if (s.transport.buffered() <= this.opts.sendBufferBytes) {
        this.slow.delete(s);
        s.overSince = 0;
      } else if (now - s.overSince >= this.opts.slowCloseMs) {
        this.log.warn({ key: s.key, ip: s.transport.ip, buffered: s.transport.buffered() }, 'comet slow consumer closed: over its send buffer limit too long');
        s.close('slow');
      }
    }
  }

  /** Closes every connection and stops timers; listeners are closed by their owners. */
  close(): void {
    this.closing = true;
    clearInterval(this.sweeper);
    this.paced.stop();
    for (const room of this.rooms.values()) room.discard();
    for (const s of [...this.sessions]) s.close('shutdown');
    this.feed.close();
  }
}

/** goim's logic maps only mid > 0 to keys (AddMapping), so push/mids never reaches mid 0. */
function isIndexedMid(mid: string): boolean {
  return mid !== '0' && !mid.startsWith('-');
}

function tupleOf(s: Session): ConnTuple {
  return [s.key, s.mid, s.room?.id ?? ''];
}
