/**
 * One plugin runner for both hosts. It loads the plugins a host names (their specs only), checks
 * claims and dependencies, starts each plugin's half for this host in dependency order inside a
 * Scope, retries a failed start with backoff, applies config changes live (update() or a clean
 * restart) and disposes of everything a plugin registered when it stops. What differs between the
 * hosts (the context, and how commands, reports and messages reach a half) comes in as
 * `instantiate` and lives in agent-runtime.ts and controller-runtime.ts.
 */
import type { PluginDefinition, PluginSpec } from '../plugins/sdk/contract.ts';
import type { Log } from '../plugins/sdk/log.ts';
import { checkSpecClaims, claimCollision, claimsOf, type Claims } from './claims.ts';
import { planStart } from './dependencies.ts';
import type { PluginStatus } from './link.ts';
import { loadPluginDefinition, validatePluginConfig } from './loader.ts';
import { Scope } from './scope.ts';
import { createSerial } from '../plugins/sdk/serial.ts';

/** What every half has, whichever host runs it. */
export interface LifecycleHalf {
  start?(): Promise<void> | void;
  stop?(): Promise<void> | void;
  update?(config: never): Promise<void> | void;
}

/** A loaded plugin as the host-specific part sees it while building an instance. */
export interface PluginSlot {
  readonly name: string;
  readonly def: PluginDefinition;
  readonly spec: PluginSpec;
  readonly claims: Claims;
  /** The validated config the instance runs with (changes on a live update). */
  readonly config: unknown;
}

/** What a host hands the runner besides its own half-building: shared by both hosts' runtimes. */
export interface RunnerHostDeps {
  log: Log;
  /** plugins/<name>/index.ts by default; tests hand definitions in directly. */
  load?(name: string): Promise<PluginDefinition>;
  retry?: { baseMs: number; maxMs: number };
  /** The plugin turned failed, or came back from failed. */
  onTransition?(name: string, change: 'failed' | 'recovered', error?: string): void;
}

export interface RunnerOptions<H extends LifecycleHalf> extends RunnerHostDeps {
  host: 'agent' | 'controller';
  /** Builds this host's half of the plugin with a context bound to scope; undefined: no half here. */
  instantiate(slot: PluginSlot, scope: Scope): Promise<H | undefined>;
}

interface Slot<H> {
  name: string;
  def?: PluginDefinition;
  claims?: Claims;
  state: PluginStatus['state'];
  error?: string;
  /** Failed for a reason a retry cannot fix (unknown plugin, claims, dependencies, bad config). */
  permanent: boolean;
  /** The config as given (validated on each start) and as validated. */
  raw: unknown;
  config: unknown;
  half?: H;
  scope?: Scope;
  retryTimer?: NodeJS.Timeout;
  retries: number;
}

const PLUGIN_NAME = /^[a-z][a-z0-9-]{0,39}$/;

export class PluginRunner<H extends LifecycleHalf> {
  private readonly slots = new Map<string, Slot<H>>();
  /** Start order (dependencies first); stops go the other way. */
  private order: string[] = [];
  /** Starts, stops, config changes and retries run one at a time: overlapping ones would orphan an instance. */
  private readonly serial = createSerial();
  private readonly retry: { baseMs: number; maxMs: number };
  private readonly load: (name: string) => Promise<PluginDefinition>;
  private stopped = false;

  constructor(private readonly o: RunnerOptions<H>) {
    this.retry = o.retry ?? { baseMs: Number(process.env.OUTPOST_PLUGIN_RETRY_MS ?? 15_000), maxMs: 5 * 60_000 };
    this.load = o.load ?? ((name) => loadPluginDefinition(name));
  }

  /** Loads every named plugin's spec, refuses what cannot run here, then starts the rest in dependency order. */
  startAll(configs: Record<string, unknown>): Promise<void> {
    return this.serial.run(async () => {
      const names = Object.keys(configs);
      for (const name of names) {
        const slot: Slot<H> = { name, state: 'stopped', permanent: false, raw: configs[name], config: undefined, retries: 0 };
        this.slots.set(name, slot);
        try {
          if (!PLUGIN_NAME.test(name) || name === 'sdk') throw new Error(`invalid plugin name "${name.slice(0, 60)}"`);
          const def = await this.load(name);
          if (def?.spec?.name !== name) throw new Error(`plugin "${name}" has no matching default export (definePlugin with spec.name "${name}")`);
          checkSpecClaims(def.spec);
          slot.def = def;
          slot.claims = claimsOf(def.spec);
        } catch (err) {
          this.refuse(slot, (err as Error).message);
        }
      }
      this.refuseCollisions(names);
      const loaded = names.filter((n) => !this.slots.get(n)!.permanent);
      const unavailable = new Map(names.filter((n) => this.slots.get(n)!.permanent).map((n) => [n, this.slots.get(n)!.error ?? 'failed']));
      // Events, what dependencies are for, live on the controller: on an agent they only order the starts.
      const depsOf = (n: string) => (this.slots.get(n)!.def!.spec.dependencies ?? []).filter((d) => this.o.host === 'controller' || names.includes(d));
      const plan = planStart(loaded.map((n) => ({ name: n, dependencies: depsOf(n) })), unavailable);
      for (const [name, why] of plan.refused) this.refuse(this.slots.get(name)!, why);
      this.order = plan.order;
      for (const name of this.order) await this.start(this.slots.get(name)!);
    });
  }

  stopAll(): Promise<void> {
    return this.serial.run(async () => {
      this.stopped = true;
      for (const name of [...this.order].reverse()) await this.stop(this.slots.get(name)!);
      for (const slot of this.slots.values()) clearTimeout(slot.retryTimer);
    });
  }

  /** A new config for one plugin: update() when the half has it, otherwise a clean stop and start. */
  apply(name: string, raw: unknown): Promise<void> {
    return this.serial.run(async () => {
      const slot = this.slots.get(name);
      if (!slot) throw new Error(`plugin "${name}" is not loaded on this ${this.o.host}`);
      if (slot.permanent && !slot.def) return;
      if (slot.state === 'running' && JSON.stringify(slot.raw) === JSON.stringify(raw)) return;
      slot.raw = raw;
      if (slot.state === 'running' && slot.half?.update) {
        const parsed = slot.def!.spec.config.safeParse(raw ?? {});
        // An invalid config falls through to the restart, which marks the plugin failed naming the field.
        if (parsed.success) {
          const previous = slot.config;
          slot.config = parsed.data;
          try {
            await (slot.half.update as (c: unknown) => Promise<void> | void)(parsed.data);
            this.o.log.info({ plugin: name }, 'plugin config updated live');
            return;
          } catch (err) {
            slot.config = previous;
            this.o.log.warn({ plugin: name, err: (err as Error).message }, 'plugin update() failed; restarting it with the new config');
          }
        }
      }
      await this.stop(slot);
      await this.start(slot);
      this.o.log.info({ plugin: name, state: slot.state }, 'plugin config applied');
    });
  }

  /** Resolves once no start, stop or config change is running or queued. */
  idle(): Promise<void> {
    return this.serial.idle();
  }

  status(): PluginStatus[] {
    return [...this.slots.values()].map((s) => ({ name: s.name, state: s.state, ...(s.error ? { error: s.error } : {}) }));
  }

  has(name: string): boolean {
    return this.slots.has(name);
  }

  /** The plugin's spec if it loaded. */
  spec(name: string): PluginSpec | undefined {
    return this.slots.get(name)?.def?.spec;
  }

  /** The running half (undefined: none on this host) with its lifetime signal, or why it is not running. */
  running(name: string): { half: H | undefined; spec: PluginSpec; signal: AbortSignal } | { error: string } {
    const slot = this.slots.get(name);
    if (!slot) return { error: `plugin ${name} is not loaded on this ${this.o.host}` };
    if (slot.state !== 'running' || !slot.def || !slot.scope) return { error: `plugin ${name} is ${slot.state}${slot.error ? `: ${slot.error}` : ''}` };
    return { half: slot.half, spec: slot.def.spec, signal: slot.scope.signal };
  }

  /** Running halves with their names, in start order. */
  halves(): Array<{ name: string; half: H }> {
    return this.order.flatMap((name) => {
      const s = this.slots.get(name)!;
      return s.state === 'running' && s.half ? [{ name, half: s.half }] : [];
    });
  }

  /** Loaded specs (running or not), e.g. to register their event names. */
  specs(): PluginSpec[] {
    return [...this.slots.values()].flatMap((s) => (s.def ? [s.def.spec] : []));
  }

  /** The claims of every other loaded plugin's spec: collisions with the earlier one fail the later. */
  private refuseCollisions(names: string[]): void {
    const accepted: Slot<H>[] = [];
    for (const name of names) {
      const slot = this.slots.get(name)!;
      if (slot.permanent) continue;
      const clash = accepted.map((other) => ({ other, what: claimCollision(slot.claims!, other.claims!) })).find((c) => c.what);
      if (clash) this.refuse(slot, `plugin ${name} claims ${clash.what}, which plugin ${clash.other.name} claims too`);
      else accepted.push(slot);
    }
  }

  private refuse(slot: Slot<H>, why: string): void {
    slot.permanent = true;
    this.fail(slot, why, `plugin cannot run on this ${this.o.host}`);
  }

  private fail(slot: Slot<H>, why: string, msg = 'plugin failed to start'): void {
    const was = slot.state;
    slot.state = 'failed';
    slot.error = why;
    this.o.log.error({ plugin: slot.name, err: why }, msg);
    if (was !== 'failed') this.o.onTransition?.(slot.name, 'failed', why);
  }

  private async start(slot: Slot<H>): Promise<void> {
    clearTimeout(slot.retryTimer);
    if (slot.permanent || this.stopped) return;
    const wasFailed = slot.state === 'failed';
    try {
      slot.config = validatePluginConfig(slot.def!, slot.raw);
    } catch (err) {
      // Not retried: the same config fails the same way until an operator changes it.
      this.fail(slot, (err as Error).message);
      return;
    }
    const scope = new Scope(slot.name);
    let half: H | undefined;
    try {
      half = await this.o.instantiate(this.view(slot), scope);
      await half?.start?.();
      slot.half = half;
      slot.scope = scope;
      slot.state = 'running';
      slot.error = undefined;
      slot.retries = 0;
      if (wasFailed) {
        this.o.log.info({ plugin: slot.name }, 'plugin recovered');
        this.o.onTransition?.(slot.name, 'recovered');
      }
    } catch (err) {
      // Cleanup works after a failed start: stop() for what the half began itself, the scope for the rest.
      await this.cleanUp(slot.name, half, scope);
      this.fail(slot, (err as Error)?.message ?? String(err));
      this.scheduleRetry(slot);
    }
  }

  private scheduleRetry(slot: Slot<H>): void {
    const delay = Math.min(this.retry.maxMs, this.retry.baseMs * 2 ** Math.min(slot.retries++, 10));
    this.o.log.warn({ plugin: slot.name, retryInMs: delay }, 'plugin start will be retried');
    slot.retryTimer = setTimeout(() => {
      void this.serial.run(async () => {
        if (slot.state === 'failed' && !slot.permanent) await this.start(slot);
      });
    }, delay);
    slot.retryTimer.unref();
  }

  private async stop(slot: Slot<H>): Promise<void> {
    clearTimeout(slot.retryTimer);
    const { half, scope } = slot;
    slot.half = undefined;
    slot.scope = undefined;
    if (scope) await this.cleanUp(slot.name, half, scope);
    if (slot.state === 'running') slot.state = 'stopped';
  }

  private async cleanUp(name: string, half: H | undefined, scope: Scope): Promise<void> {
    try {
      await half?.stop?.();
    } catch (err) {
      this.o.log.warn({ plugin: name, err: (err as Error)?.message }, 'plugin stop failed');
    }
    await scope.dispose((what, err) => this.o.log.warn({ plugin: name, what, err: (err as Error)?.message }, 'plugin cleanup step failed'));
  }

  private view(slot: Slot<H>): PluginSlot {
    return {
      name: slot.name,
      def: slot.def!,
      spec: slot.def!.spec,
      claims: slot.claims!,
      get config() {
        return slot.config;
      },
    };
  }
}
