/**
 * The seam between the jobs benchmark and a system under test. A side starts its processes, creates
 * the jobs it is given (each acknowledged, i.e. durable for that system, before the client sends its
 * next one) and stops; the bench drives the shared receiver and does every measurement.
 */
export interface BenchJob {
  /** Index; the receiver dedupes on it. */
  i: number;
  /** When the callback is due, ms since epoch. */
  due: number;
}

/** The JSON text both sides send as content, so receivers read `{"data":{"i":…,"due":…}}`. */
export const jobContent = (j: BenchJob): string => `{"i":${j.i},"due":${j.due}}`;

/** The application both sides sign callbacks as (the receiver does not check the secret; the cost is real). */
export const BENCH_APP = { appName: 'jobs-bench', appKey: 'BenchAppKey00000', secretKey: 'BenchSecretKey000000000000000000' };

export interface SideOptions {
  receiverUrl: string;
  /** Callbacks in flight at most (BullMQ worker concurrency; Outpost concurrencyPerNode on one node). */
  concurrency: number;
  /** Concurrent clients creating jobs. */
  clients: number;
}

export interface JobsSide {
  readonly name: string;
  /** Starts the system; answers the processes whose CPU and memory are its cost, by label. */
  start(): Promise<Record<string, number>>;
  create(jobs: BenchJob[]): Promise<void>;
  stop(): Promise<void>;
}

/** Thrown by start() when a side cannot run in this build or on this machine; the bench reports why. */
export class SideUnavailable extends Error {}

/** Runs fn over items with `clients` workers, in order per worker. */
export async function withClients<T>(items: T[], clients: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.max(1, clients) }, async () => {
      for (let k = next++; k < items.length; k = next++) await fn(items[k]);
    }),
  );
}
