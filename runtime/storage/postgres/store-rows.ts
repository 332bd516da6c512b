/**
 * How a store's document maps onto rows: one row per top-level field, and for a field holding an
 * object (the maps keyed by id: nodes, tokens, subscriptions, monitors...) one row per entry, the
 * field's own row holding `{}`. A commit writes the rows whose JSON changed, so enrolling one node
 * writes one small row, not the whole nodes document; and two controllers changing different nodes
 * touch different rows.
 *
 * Row texts are what JSON.stringify makes of the value, so a store reads back exactly as a lowdb file
 * with the same data would (objects without prototypes, undefined values left out).
 */
import { parseStoredJson } from '../../../plugins/sdk/json.ts';

/** Row entry of a field's own row; an entry row is `/` + the entry's key. */
export const FIELD_ROW = '';
const OBJECT = '{}';

/** field → entry → JSON text. */
export type Rows = Map<string, Map<string, string>>;

export function isObjectField(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  // Class instances (and anything with its own toJSON) serialise their own way: one row for them.
  return (proto === null || proto === Object.prototype) && typeof (v as { toJSON?: unknown }).toJSON !== 'function';
}

export function setRow(rows: Rows, field: string, entry: string, text: string): void {
  let m = rows.get(field);
  if (!m) rows.set(field, (m = new Map()));
  m.set(entry, text);
}

export function rowText(rows: Rows, field: string, entry: string): string | undefined {
  return rows.get(field)?.get(entry);
}

export function deleteRow(rows: Rows, field: string, entry: string): void {
  const m = rows.get(field);
  if (!m) return;
  m.delete(entry);
  if (m.size === 0) rows.delete(field);
}

/** The rows of a document, as they would be written now. */
export function rowsOf(data: object): Rows {
  const rows: Rows = new Map();
  for (const [field, value] of Object.entries(data)) {
    if (isObjectField(value)) {
      setRow(rows, field, FIELD_ROW, OBJECT);
      for (const [k, v] of Object.entries(value)) {
        const text = JSON.stringify(v);
        if (text !== undefined) setRow(rows, field, `/${k}`, text);
      }
    } else {
      const text = JSON.stringify(value);
      if (text !== undefined) setRow(rows, field, FIELD_ROW, text);
    }
  }
  return rows;
}

export function countRows(rows: Rows): number {
  let n = 0;
  for (const m of rows.values()) n += m.size;
  return n;
}

/** The text one row of a document would be written as (rowsOf's, for that row alone); undefined: no such row. */
export function textOf(data: object, field: string, entry: string): string | undefined {
  if (!Object.hasOwn(data, field)) return undefined;
  const value = (data as Record<string, unknown>)[field];
  if (entry === FIELD_ROW) return isObjectField(value) ? OBJECT : JSON.stringify(value);
  if (!isObjectField(value)) return undefined;
  const key = entry.slice(1);
  return Object.hasOwn(value, key) ? JSON.stringify(value[key]) : undefined;
}

export interface RowChange {
  field: string;
  entry: string;
  /** undefined: the row goes. */
  text: string | undefined;
}

/** Rows that differ between two states: what `to` has (or lacks) compared with `from`. */
export function diffRows(from: Rows, to: Rows): RowChange[] {
  const out: RowChange[] = [];
  for (const [field, m] of to) {
    const old = from.get(field);
    for (const [entry, text] of m) if (old?.get(entry) !== text) out.push({ field, entry, text });
  }
  for (const [field, m] of from) {
    const now = to.get(field);
    for (const entry of m.keys()) if (!now?.has(entry)) out.push({ field, entry, text: undefined });
  }
  return out;
}

/** The document rows make (objects without prototypes). */
export function documentOf(rows: Rows): Record<string, unknown> {
  const doc = Object.create(null) as Record<string, unknown>;
  for (const [field, m] of rows) {
    const own = m.get(FIELD_ROW);
    if (own === undefined) continue;
    const value = parseStoredJson(own) as Record<string, unknown>;
    if (isObjectField(value)) for (const [entry, text] of m) if (entry !== FIELD_ROW) value[entry.slice(1)] = parseStoredJson(text);
    doc[field] = value;
  }
  return doc;
}

/**
 * Puts value at holder[key], into the object or array already there when both are of one kind: code
 * holding on to a record (the registry keeps its node records) keeps seeing the store's value.
 */
function put(holder: Record<string, unknown>, key: string, value: unknown): void {
  const cur = holder[key];
  if (Array.isArray(cur) && Array.isArray(value)) {
    cur.splice(0, cur.length, ...value);
  } else if (isObjectField(cur) && isObjectField(value)) {
    for (const k of Object.keys(cur)) if (!Object.hasOwn(value, k)) delete cur[k];
    Object.assign(cur, value);
  } else holder[key] = value;
}

/**
 * Makes the given rows of `data` what `rows` says (the value, or gone), leaving every other row of
 * `data` as it is: how a failed commit is undone and another controller's changes are taken in.
 */
export function applyRows(data: Record<string, unknown>, rows: Rows, changed: Array<{ field: string; entry: string }>): void {
  // Fields first: an entry needs its field to be an object.
  for (const { field, entry } of changed) {
    if (entry !== FIELD_ROW) continue;
    const text = rowText(rows, field, FIELD_ROW);
    if (text === undefined) delete data[field];
    else if (text !== OBJECT || !isObjectField(data[field])) put(data, field, parseStoredJson(text));
  }
  for (const { field, entry } of changed) {
    if (entry === FIELD_ROW) continue;
    const holder = data[field];
    if (!isObjectField(holder)) continue;
    const text = rowText(rows, field, entry);
    if (text === undefined) delete holder[entry.slice(1)];
    else put(holder, entry.slice(1), parseStoredJson(text));
  }
}

/** A row named by an update's touches: [field] is the field's own row, [field, key] one entry's. */
export type RowKey = readonly [field: string, entry: string];

/** The rows touches name, with the field rows of the entries they name (an entry needs its field). */
export function touchedRows(touches: ReadonlyArray<readonly [string, string?]>): RowKey[] {
  const out = new Map<string, RowKey>();
  for (const [field, key] of touches) {
    out.set(`${field}\u0000`, [field, FIELD_ROW]);
    if (key !== undefined) out.set(`${field}\u0000/${key}`, [field, `/${key}`]);
  }
  return [...out.values()];
}

/** The texts of some rows of a document (rowsOf, for those rows only). */
export function pickRows(data: object, keys: Iterable<RowKey>): Rows {
  const rows: Rows = new Map();
  for (const [field, entry] of keys) {
    const text = textOf(data, field, entry);
    if (text !== undefined) setRow(rows, field, entry, text);
  }
  return rows;
}

/**
 * What diffRows(from, rowsOf(data)) says of the given rows; undefined when an object field was
 * replaced, removed or turned into one (its entries may all have changed: only a full diff knows).
 */
export function diffRowsAt(from: Rows, data: object, keys: Iterable<RowKey>): RowChange[] | undefined {
  const out: RowChange[] = [];
  for (const [field, entry] of keys) {
    const text = textOf(data, field, entry);
    const old = rowText(from, field, entry);
    if (text === old) continue;
    // An object field's own row is `{}` for as long as it is one: a change means it was replaced.
    if (entry === FIELD_ROW && (old === OBJECT || (old !== undefined && text === OBJECT))) return undefined;
    out.push({ field, entry, text });
  }
  return out;
}
