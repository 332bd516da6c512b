/**
 * Actions in dashboard panels: a form with fields, or one button (per table row, say), that sends a
 * request to one of the plugin's own routes and shows the answer, with no HTML or script plumbing.
 *
 * The dashboard script submits them with fetch, adding the session's CSRF token (the host puts it in
 * the page, never in panel markup) and asking for confirmation first when `confirm` is set. Routes with
 * `auth: 'admin'` accept the dashboard session for these requests; they are refused without the token
 * or from another origin. The answer is announced in the page's live region and, depending on
 * `result`, shown under the action: the JSON answer, or one-time values (a token, a secret) in
 * copyable fields that exist only in that browser tab and are never rendered by the server.
 */
import { createHash } from 'node:crypto';
import { attrs, esc, Html, raw } from './html.ts';

export type FieldType = 'text' | 'number' | 'url' | 'password' | 'textarea' | 'select' | 'checkbox' | 'checkboxes' | 'hidden';

export interface Field {
  name: string;
  /** Visible label; required for every type but hidden. */
  label?: string;
  type?: FieldType;
  /** Initial value; for checkboxes the checked values, for a checkbox whether it is checked. */
  value?: string | number | boolean | string[];
  /** For select and checkboxes. */
  options?: Array<string | { value: string; label: string }>;
  required?: boolean;
  placeholder?: string;
  /** A line of help under the field, tied to it with aria-describedby. */
  hint?: string;
  min?: number;
  max?: number;
  step?: number;
  maxLength?: number;
}

/** What the page shows under the action when the route answers 2xx (errors always show their message). */
export type ActionResult =
  | { show: 'message' }
  | { show: 'json' }
  /**
   * Values shown once, each line a template filled from the JSON answer (`{token}`, `{a.b}`) and
   * `{controller}` (the controller URL browsers and nodes use), in read-only fields with a Copy button.
   */
  | { show: 'once'; note: string; lines: Array<{ label: string; template: string }> };

export type ActionMethod = 'POST' | 'PUT' | 'PATCH' | 'DELETE';

interface ActionCommon {
  /** Unique on the page and stable across refreshes (prefix it with the plugin name; see domId). */
  id: string;
  /** Same-origin path of the route, e.g. `/api/v1/prober/monitors`. */
  action: string;
  method?: ActionMethod;
  /** Asked before sending; the action is cancelled unless the operator agrees. */
  confirm?: string;
  result?: ActionResult;
  /** The line announced on success, a template filled from the JSON answer; default "Done." */
  success?: string;
}

export interface FormOptions extends ActionCommon {
  fields: Field[];
  submit: string;
}

export interface ButtonOptions extends ActionCommon {
  label: string;
  /** Spoken name when the visible label needs its row for context ("Delete" → "Delete node edge-a"). */
  ariaLabel?: string;
  /** Sent as the request body. */
  fields?: Record<string, string | number>;
  danger?: boolean;
}

const ID = /^[A-Za-z][A-Za-z0-9_-]{0,119}$/;
const FIELD_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;

/**
 * A stable element id for an action on a record whose key may hold any characters: readable prefix,
 * the key's safe characters, and a short hash of the whole key so two keys never share an id.
 */
export function domId(prefix: string, key: string): string {
  const safe = key.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 40);
  const hash = createHash('sha256').update(key).digest('hex').slice(0, 8);
  return `${prefix}-${safe}-${hash}`;
}

function check(o: ActionCommon): void {
  if (!ID.test(o.id)) throw new Error(`action id ${JSON.stringify(o.id)} must match ${ID} (use domId for record keys)`);
  if (!o.action.startsWith('/') || o.action.startsWith('//')) throw new Error(`action ${JSON.stringify(o.action)} must be a path on this controller`);
}

/** The <form> attributes the dashboard script acts on. */
function formAttrs(o: ActionCommon, cls: string): string {
  const result = o.result ?? { show: 'message' };
  return attrs({
    id: o.id,
    class: cls,
    method: 'post',
    action: o.action,
    'data-op': true,
    'data-keep': true,
    'data-method': o.method ?? 'POST',
    'data-confirm': o.confirm,
    'data-result': result.show,
    'data-once': result.show === 'once' ? JSON.stringify({ note: result.note, lines: result.lines }) : undefined,
    'data-success': o.success,
  });
}

/** Where the answer appears; kept across live refreshes, filled only in the browser. */
function resultBox(id: string): string {
  return `<div${attrs({ id: `${id}-result`, class: 'op-result', 'data-keep': true, hidden: true })}></div>`;
}

const optionList = (f: Field) => (f.options ?? []).map((o) => (typeof o === 'string' ? { value: o, label: o } : o));

function fieldHtml(formId: string, f: Field): string {
  if (!FIELD_NAME.test(f.name)) throw new Error(`field name ${JSON.stringify(f.name)} must match ${FIELD_NAME}`);
  const type = f.type ?? 'text';
  if (type === 'hidden') return `<input${attrs({ type: 'hidden', name: f.name, value: String(f.value ?? '') })}>`;
  if (!f.label) throw new Error(`field "${f.name}" needs a label`);
  const id = `${formId}-${f.name.replace(/\./g, '_')}`;
  const hintId = f.hint ? `${id}-hint` : undefined;
  const hint = f.hint ? `<small${attrs({ id: hintId, class: 'muted hint' })}>${esc(f.hint)}</small>` : '';
  const common = { id, name: f.name, required: f.required, 'aria-describedby': hintId };
  if (type === 'checkbox') {
    return `<div class="field check"><label><input${attrs({ ...common, type: 'checkbox', value: 'true', checked: f.value === true })}> ${esc(f.label)}</label>${hint}</div>`;
  }
  if (type === 'checkboxes') {
    const checked = new Set(Array.isArray(f.value) ? f.value : []);
    const boxes = optionList(f).map((o, i) => `<label><input${attrs({ type: 'checkbox', id: `${id}-${i}`, name: f.name, value: o.value, checked: checked.has(o.value) })}> ${esc(o.label)}</label>`);
    return `<fieldset${attrs({ class: 'field checks', 'data-multiple': true, 'aria-describedby': hintId })}><legend>${esc(f.label)}</legend>${boxes.join('')}${hint}</fieldset>`;
  }
  let control: string;
  if (type === 'select') {
    const options = optionList(f).map((o) => `<option${attrs({ value: o.value, selected: String(f.value ?? '') === o.value })}>${esc(o.label)}</option>`);
    control = `<select${attrs(common)}>${options.join('')}</select>`;
  } else if (type === 'textarea') {
    control = `<textarea${attrs({ ...common, rows: 3, placeholder: f.placeholder, maxlength: f.maxLength })}>${esc(f.value ?? '')}</textarea>`;
  } else {
    const value = f.value === undefined || typeof f.value === 'boolean' || Array.isArray(f.value) ? undefined : String(f.value);
    control = `<input${attrs({ ...common, type, value, placeholder: f.placeholder, min: f.min, max: f.max, step: f.step, maxlength: f.maxLength, spellcheck: type === 'text' || type === 'url' ? 'false' : undefined, autocomplete: type === 'password' ? 'new-password' : 'off' })}>`;
  }
  return `<div class="field"><label${attrs({ for: id })}>${esc(f.label)}</label>${control}${hint}</div>`;
}

/** A form posting its fields (as JSON) to a route; the answer shows under it. */
export function form(o: FormOptions): Html {
  check(o);
  const names = o.fields.filter((f) => f.type !== 'checkboxes').map((f) => f.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw new Error(`form ${o.id}: field "${dup}" appears twice`);
  return raw(
    `<div class="op"><form${formAttrs(o, 'op-form')}><div class="op-fields">${o.fields.map((f) => fieldHtml(o.id, f)).join('')}</div>` +
      `<div class="op-submit"><button type="submit" class="btn primary">${esc(o.submit)}</button></div></form>${resultBox(o.id)}</div>`,
  );
}

/** One button sending fixed fields to a route: delete, retry, cancel, re-run a record. */
export function actionButton(o: ButtonOptions): Html {
  check(o);
  const hidden = Object.entries(o.fields ?? {}).map(([name, value]) => fieldHtml(o.id, { name, type: 'hidden', value }));
  return raw(
    `<div class="op op-inline"><form${formAttrs(o, 'op-button')}>${hidden.join('')}` +
      `<button${attrs({ type: 'submit', class: o.danger ? 'btn small danger' : 'btn small', 'aria-label': o.ariaLabel })}>${esc(o.label)}</button></form>${resultBox(o.id)}</div>`,
  );
}
