import { HttpError } from './http.ts';

/**
 * One rule for every id a route takes, in its path, query, form or JSON body: node ids, names and
 * addresses, token, webhook and delivery ids, plugin and app names, prober app, group and record ids.
 * Ids end up as keys of maps in memory and on disk, so the names of Object.prototype's members
 * (`__proto__`, `constructor`, `toString`, …) and `prototype` are refused everywhere: a request must
 * never reach the prototype through a key, even where a map was left a plain object.
 */
const ID = /^[A-Za-z0-9._:-]{1,64}$/;
const RESERVED = new Set([...Object.getOwnPropertyNames(Object.prototype), 'prototype']);

/** Whether k names a member of every plain object (so it must not be used as a key). */
export function isReservedKey(k: string): boolean {
  return RESERVED.has(k);
}

/** Why value is not a usable id (a message naming field), or undefined when it is one. */
export function idProblem(value: unknown, field: string): string | undefined {
  if (typeof value !== 'string') return `${field} must be a string`;
  const shown = JSON.stringify(value.slice(0, 64));
  if (!ID.test(value)) return `${field} ${shown} is not a valid id: use 1-64 letters, digits, ".", "_", "-" or ":"`;
  if (RESERVED.has(value)) return `${field} ${shown} is reserved (every JavaScript object has a member of that name) and cannot be an id`;
  return undefined;
}

/** The id, or an HttpError 400 (the route's own envelope) naming the field and the rule. */
export function checkId(value: unknown, field: string): string {
  const problem = idProblem(value, field);
  if (problem) throw new HttpError(400, problem);
  return value as string;
}

/**
 * A map keyed by ids, as an object without a prototype: `m["__proto__"]` is an ordinary entry and
 * `m["toString"]` is undefined, so no key can read or write Object.prototype through it.
 */
export function idMap<V>(entries?: Record<string, V>): Record<string, V> {
  return Object.assign(Object.create(null) as Record<string, V>, entries);
}
