/** `outpost store ...`: the PostgreSQL store's schema, and moving state between it and a data dir of files. */
import { UsageError } from './args.ts';
import { required, type Command, type Flags, type Invocation } from './command.ts';
import { out } from './format.ts';

const CONFIG: Flags = {
  config: { type: 'string', value: 'FILE', help: 'controller config JSON naming the database (store.url); env OUTPOST_STORE_URL wins' },
  json: { type: 'boolean', help: 'print the result as JSON' },
};

const str = (v: unknown) => (typeof v === 'string' ? v : undefined);

/** The database the environment (or the controller config) names, schema brought up to date. */
async function database(values: Invocation['values']) {
  const [{ loadControllerConfig }, { resolveStore }, { openDatabase }, { createLog }] = await Promise.all([
    import('../../controller/config.ts'),
    import('../../runtime/storage/store-config.ts'),
    import('../../runtime/storage/controller-storage.ts'),
    import('../../plugins/sdk/log.ts'),
  ]);
  const config = await loadControllerConfig(str(values.config));
  const store = resolveStore(config.store);
  if (store.kind !== 'postgres') throw new UsageError('no PostgreSQL database named: set OUTPOST_STORE_URL=postgres://user:password@host:port/database (or pass --config with store.kind "postgres")');
  return { ...(await openDatabase(store, 'outpost-store-tool')), log: createLog('store') };
}

const transfer = (direction: 'export' | 'import'): Command => ({
  path: ['store', direction],
  summary:
    direction === 'export'
      ? 'copy the PostgreSQL store into a data dir a single lowdb controller can run on'
      : 'copy a controller data dir into a fresh PostgreSQL database',
  details:
    direction === 'export'
      ? 'DIR must be empty or not exist. Stop the controllers first: the copy is what the database holds at that moment.'
      : 'The database must hold no Outpost data yet. Stop the controller whose data dir DIR is first.',
  flags: { data: { type: 'string', value: 'DIR', help: direction === 'export' ? 'data dir to create (required)' : "the controller's data dir (required)" }, ...CONFIG },
  run: async ({ values, json }) => {
    const dir = required(values, 'data', `store ${direction}`);
    const { db, log } = await database(values);
    try {
      const { exportStore, importStore } = await import('../../runtime/storage/transfer.ts');
      const r = await (direction === 'export' ? exportStore(db, dir, log) : importStore(db, dir, log));
      out(json, r, () =>
        [
          `${direction === 'export' ? 'exported' : 'imported'} ${r.stores} stores, ${r.histories} histories, ${r.logs} logs and ${r.queues} queues (${r.records} records) ${direction === 'export' ? `from ${db.where} to ${dir}` : `from ${dir} to ${db.where}`}`,
          ...(r.skipped.length ? [`left alone (not stores, logs or queues): ${r.skipped.join(', ')}`] : []),
        ].join('\n'),
      );
    } finally {
      await db.close();
    }
  },
});

export const storeCommands: Command[] = [
  {
    path: ['store', 'migrate'],
    summary: 'create or upgrade the PostgreSQL schema (run again: changes nothing)',
    details: 'Controllers do this by themselves at start; run it to upgrade ahead of them. A schema newer than this Outpost is refused.',
    flags: CONFIG,
    run: async ({ values, json }) => {
      const { db, migrated } = await database(values);
      await db.close();
      out(json, { ...migrated, where: db.where }, () =>
        migrated.applied.length ? `migrated ${db.where} from schema ${migrated.from} to ${migrated.to} (applied ${migrated.applied.join(', ')})` : `schema of ${db.where} is at version ${migrated.to}: nothing to do`,
      );
    },
  },
  transfer('export'),
  transfer('import'),
];
