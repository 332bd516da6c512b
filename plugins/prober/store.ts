import { idMap, importLegacyJson, onRemoteAppend, refreshLog, z, type ControllerContext, type DurableLog } from '../sdk/index.ts';
import type { Group } from './schema.ts';
import type { Spec } from './spec.ts';
import { roundKey, type MonitorsData, type NodeReg, type OpenRound, type RecordState, type RoundsData, type Vote } from './state.ts';

/**
 * The controller's prober state on one durable log keyed by group (`prober.state.*`): monitor
 * groups, their records' states, probe nodes, agents seen probing, and the open rounds with their
 * votes. A change appends the records that describe it (an operate_monitor one group, a report the
 * votes it brought, a decided round the group's states and "closed"), so no request rewrites what
 * it did not change; compaction folds it all into a snapshot now and then.
 *
 * Records are ordered so that a crash cutting an append short leaves a state the next start can go
 * on from: a round's states come before its "closed" (a round decided again repeats its callback at
 * worst, and callbacks are queued before either).
 */
export type StateRecord =
  | { t: 'group'; g: Group }
  | { t: 'stop'; key: string }
  | { t: 'states'; key: string; s: Record<string, RecordState> }
  | { t: 'node'; n: NodeReg }
  | { t: 'deal'; ip: string; at: number }
  | { t: 'agent'; id: string; at: number }
  | { t: 'open'; o: OpenRound }
  | { t: 'votes'; k: string; node: string; v: Record<string, Vote> }
  | { t: 'closed'; k: string[] };

const map = z.record(z.string(), z.unknown());
// Checked enough to apply safely (the fields replay reads); the rest is kept as written.
const StateRecordSchema = z.discriminatedUnion('t', [
  z.object({ t: z.literal('group'), g: z.looseObject({ key: z.string(), app: z.string(), groupId: z.string(), interval: z.number(), level: z.number(), records: z.array(z.object({ id: z.string(), ip: z.string() })) }) }),
  z.object({ t: z.literal('stop'), key: z.string() }),
  z.object({ t: z.literal('states'), key: z.string(), s: map }),
  z.object({ t: z.literal('node'), n: z.looseObject({ ip: z.string(), hash: z.string(), salt: z.string(), addedAt: z.number() }) }),
  z.object({ t: z.literal('deal'), ip: z.string(), at: z.number() }),
  z.object({ t: z.literal('agent'), id: z.string(), at: z.number() }),
  z.object({ t: z.literal('open'), o: z.looseObject({ g: z.string(), round: z.number(), expected: z.array(z.string()), openedAt: z.number(), votes: map }) }),
  z.object({ t: z.literal('votes'), k: z.string(), node: z.string(), v: map }),
  z.object({ t: z.literal('closed'), k: z.array(z.string()) }),
]) as unknown as z.ZodType<StateRecord>;

/** Records whose loss on a power cut costs nothing that matters: a round opened again, a later lastDeal. */
const LAZY = { sync: false } as const;

export class ProberStore {
  /** Groups, record states, probe nodes and known agents, read by the routes and the panel. */
  readonly data: MonitorsData = { groups: idMap(), records: idMap(), probeNodes: idMap(), knownAgents: idMap() };
  /** Open rounds by roundKey. */
  readonly open: RoundsData['open'] = idMap();
  /** Open round keys per group, so stopping a group does not scan every round. */
  private readonly openOf = new Map<string, Set<string>>();
  /**
   * The latest round decided per group. Kept from the records themselves (not by whoever decides), so
   * that every controller knows it: a controller that takes over must not decide a round again that
   * another one closed, and a round opened after its close (a report taken in elsewhere meanwhile) stays closed.
   */
  private readonly decidedTo = new Map<string, number>();
  private log!: DurableLog<StateRecord>;

  static async open(ctx: ControllerContext<Spec>): Promise<ProberStore> {
    const s = new ProberStore();
    // Records other controllers append reach load too (PostgreSQL), after this controller's own of the same moment.
    s.log = await ctx.openLog('state', StateRecordSchema, { load: (r) => s.apply(r), reset: () => s.reset(), snapshot: () => s.snapshot() });
    await s.importOld(ctx.dataDir);
    return s;
  }

  /**
   * Calls fn with the records another controller appended (sharing the database), once this store has
   * applied them, in the log's order (`reset`: they are the whole state again); returns the
   * unsubscribe. Nothing ever comes on files.
   */
  follow(fn: (records: StateRecord[], reset: boolean) => void): () => void {
    return onRemoteAppend(this.log, (records, how) => fn(records, how.reset));
  }

  /** Resolves once this store holds what other controllers appended before the call (at once on files). */
  refresh(): Promise<void> {
    return refreshLog(this.log);
  }

  /** The latest round of a group decided by any controller; -1 when none. */
  lastDecided(g: string): number {
    return this.decidedTo.get(g) ?? -1;
  }

  /** Creates or replaces a group; its records that left take their states with them. */
  putGroup(g: Group): Promise<void> {
    return this.write([{ t: 'group', g }]);
  }

  /** Removes a group with its states and open rounds. */
  stopGroup(key: string): Promise<void> {
    return this.write([{ t: 'stop', key }]);
  }

  putNode(n: NodeReg): Promise<void> {
    return this.write([{ t: 'node', n }]);
  }

  dealt(ip: string, at: number): Promise<void> {
    return this.write([{ t: 'deal', ip, at }], LAZY);
  }

  sawAgents(ids: string[], at: number): Promise<void> {
    return this.write(ids.map((id): StateRecord => ({ t: 'agent', id, at })));
  }

  /** Rounds that started: written lazily (a round lost on a power cut is opened again by the next tick). */
  openRounds(rounds: OpenRound[]): Promise<void> {
    return this.write(
      rounds.filter((o) => !this.open[roundKey(o.g, o.round)]).map((o): StateRecord => ({ t: 'open', o })),
      LAZY,
    );
  }

  /** Votes of one report or deal (and rounds they open): on disk before it is acknowledged. */
  addVotes(records: StateRecord[]): Promise<void> {
    return this.write(records);
  }

  /** A batch of decided rounds: the groups' new record states, then the rounds closed. */
  decided(states: Array<{ key: string; s: Record<string, RecordState> }>, rounds: string[]): Promise<void> {
    return this.write([...states.map(({ key, s }): StateRecord => ({ t: 'states', key, s })), { t: 'closed', k: rounds }]);
  }

  private write(records: StateRecord[], opts?: { sync: false }): Promise<void> {
    if (records.length === 0) return Promise.resolve();
    for (const r of records) this.apply(r);
    return this.log.append(records, opts);
  }

  private apply(r: StateRecord): void {
    const d = this.data;
    switch (r.t) {
      case 'group': {
        d.groups[r.g.key] = r.g;
        const states = d.records[r.g.key];
        if (states) for (const id of Object.keys(states)) if (!r.g.records.some((x) => x.id === id)) delete states[id];
        break;
      }
      case 'stop':
        delete d.groups[r.key];
        delete d.records[r.key];
        this.decidedTo.delete(r.key);
        for (const k of this.openOf.get(r.key) ?? []) delete this.open[k];
        this.openOf.delete(r.key);
        break;
      case 'states':
        if (!d.groups[r.key]) break;
        d.records[r.key] = idMap({ ...d.records[r.key], ...r.s });
        // A snapshot holds states, not the "closed" that followed them.
        for (const s of Object.values(r.s)) if (typeof s?.lastRound === 'number') this.decide(r.key, s.lastRound);
        break;
      case 'node':
        d.probeNodes[r.n.ip] = r.n;
        break;
      case 'deal':
        if (d.probeNodes[r.ip]) d.probeNodes[r.ip].lastDeal = r.at;
        break;
      case 'agent':
        d.knownAgents[r.id] = r.at;
        break;
      case 'open': {
        const k = roundKey(r.o.g, r.o.round);
        // Opened by a controller that had not yet seen its close (reports race the decision): stays closed.
        if (this.open[k] || r.o.round <= this.lastDecided(r.o.g)) break;
        // Votes are added to it in place: its own maps, without prototypes (record ids are keys).
        this.open[k] = { ...r.o, votes: idMap({ ...r.o.votes }) };
        let set = this.openOf.get(r.o.g);
        if (!set) this.openOf.set(r.o.g, (set = new Set()));
        set.add(k);
        break;
      }
      case 'votes': {
        const o = this.open[r.k];
        if (!o) break;
        for (const [record, vote] of Object.entries(r.v)) (o.votes[record] ??= idMap())[r.node] = vote;
        break;
      }
      case 'closed':
        for (const k of r.k) {
          const at = k.lastIndexOf('@');
          this.decide(k.slice(0, at), Number(k.slice(at + 1)));
          const o = this.open[k];
          if (!o) continue;
          delete this.open[k];
          this.openOf.get(o.g)?.delete(k);
        }
        break;
    }
  }

  /** Forgets everything: the whole log follows (a controller that fell behind another's compaction). */
  private reset(): void {
    const d = this.data;
    d.groups = idMap();
    d.records = idMap();
    d.probeNodes = idMap();
    d.knownAgents = idMap();
    for (const k of Object.keys(this.open)) delete this.open[k];
    this.openOf.clear();
    this.decidedTo.clear();
  }

  private decide(g: string, round: number): void {
    if (round > this.lastDecided(g)) this.decidedTo.set(g, round);
  }

  private *snapshot(): Iterable<StateRecord> {
    const d = this.data;
    for (const n of Object.values(d.probeNodes)) yield { t: 'node', n };
    for (const [id, at] of Object.entries(d.knownAgents)) yield { t: 'agent', id, at };
    // Open rounds before the states: a round still open may be older than one decided after it
    // (it waits for replays after a restart or takeover), and an open after the states would be
    // taken for a late one.
    for (const o of Object.values(this.open)) yield { t: 'open', o };
    for (const g of Object.values(d.groups)) {
      yield { t: 'group', g };
      const s = d.records[g.key];
      if (s) yield { t: 'states', key: g.key, s };
    }
  }

  /** Carries the whole-file stores of older releases (`prober.monitors.json`, `prober.rounds.json`) into the log, once. */
  private async importOld(dir: string): Promise<void> {
    await importLegacyJson<Partial<MonitorsData>>(dir, 'prober.monitors.json', async (old) => {
      if (Object.keys(this.data.groups).length || Object.keys(this.data.probeNodes).length) return;
      const recs: StateRecord[] = [];
      for (const n of Object.values(old.probeNodes ?? {})) recs.push({ t: 'node', n });
      for (const [id, at] of Object.entries(old.knownAgents ?? {})) recs.push({ t: 'agent', id, at });
      for (const g of Object.values(old.groups ?? {})) {
        recs.push({ t: 'group', g });
        const s = old.records?.[g.key];
        if (s) recs.push({ t: 'states', key: g.key, s });
      }
      await this.write(recs);
    });
    await importLegacyJson<Partial<RoundsData>>(dir, 'prober.rounds.json', async (old) => {
      await this.write(Object.values(old.open ?? {}).map((o): StateRecord => ({ t: 'open', o })));
    });
  }
}
