/**
 * What a plugin may use: the contract (defineSpec, definePlugin, defineAgent, defineController and
 * the context types), HTTP route types and errors, and small helpers. Host machinery lives in
 * runtime/, which no plugin imports.
 */
export * from './contract.ts';
export * from './http.ts';
export * from './envelopes.ts';
export type { Store } from './store.ts';
export type { Scheduler } from './scheduler.ts';
export type { Log } from './log.ts';
export type { Counter, Gauge, Histogram, Labels, Metrics } from './metrics.ts';
export { LATENCY_BUCKETS } from './metrics.ts';
export { LoopDelay } from './loop-delay.ts';
export * from './backoff.ts';
export { describeIssues, parseOrThrow } from './validate.ts';
export { z } from 'zod';
export * from './signature.ts';
export * from './secret.ts';
export * from './version.ts';
export * from './durable/log.ts';
export * from './durable/storage-error.ts';
export { StaleLeaseError } from './durable/fence.ts';
export * from './durable/health.ts';
export * from './durable/queue.ts';
export * from './durable/queue-worker.ts';
export * from './durable/history.ts';
export { importLegacyJson, importLegacyLines } from './durable/legacy-json.ts';
export * from './nodes.ts';
export * from './capabilities.ts';
export * from './ids.ts';
export { parseWireJson } from './json.ts';
export { appendPrivate, privateDir, replacePrivate } from './files.ts';
export * from './html.ts';
export * from './panel-views.ts';
export * from './panel-actions.ts';
