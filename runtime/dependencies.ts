/**
 * Start order from declared dependencies. A plugin whose dependency is not loaded on this host, is
 * part of a cycle, or depends on such a plugin cannot start; it gets the reason and the rest run.
 */
export interface DependencyPlan {
  /** Every startable plugin, each after its dependencies (config order otherwise). */
  order: string[];
  /** Plugin → why it cannot start. */
  refused: Map<string, string>;
}

export function planStart(plugins: Array<{ name: string; dependencies: string[] }>, unavailable: Map<string, string> = new Map()): DependencyPlan {
  const deps = new Map(plugins.map((p) => [p.name, p.dependencies]));
  const refused = new Map<string, string>();
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();

  /** Returns the reason `name` cannot start, or undefined once it is placed in order. */
  function visit(name: string, path: string[]): string | undefined {
    if (refused.has(name)) return refused.get(name);
    if (state.get(name) === 'done') return undefined;
    if (state.get(name) === 'visiting') {
      const cycle = [...path.slice(path.indexOf(name)), name];
      return `dependency cycle: ${cycle.join(' → ')}`;
    }
    if (unavailable.has(name)) return unavailable.get(name);
    const own = deps.get(name);
    if (!own) return `not loaded on this host`;
    state.set(name, 'visiting');
    for (const d of own) {
      if (!deps.has(d) && !unavailable.has(d)) return fail(name, `depends on "${d}", which is not configured on this host`);
      const why = visit(d, [...path, name]);
      if (why !== undefined) return fail(name, why.startsWith('dependency cycle') ? why : `depends on "${d}", which cannot start: ${why}`);
    }
    state.set(name, 'done');
    order.push(name);
    return undefined;
  }

  function fail(name: string, why: string): string {
    state.set(name, 'done');
    refused.set(name, why);
    return why;
  }

  for (const p of plugins) visit(p.name, []);
  return { order, refused };
}
