/**
 * The curl examples of a Markdown file, read and turned into fetch requests, so a test can run a
 * README verbatim on a machine without curl (test/readme-examples.test.ts).
 *
 * What counts as an example: in a fenced block, every line that starts a `curl` command (an optional
 * `$ ` prompt before it), with its `\` continuation lines; outside fences, an inline code span that
 * starts with `curl `. A fenced line that mentions curl anywhere else (`X=$(curl …)`, `sudo curl`)
 * is refused, so no example is silently skipped.
 *
 * Shell: words split on blanks; '…' literal; "…" with \" \\ \$ escapes and $VAR / ${VAR}
 * expansion; unquoted $VAR expanded too (never re-split); `#` at a word's start ends the command.
 * Pipes, redirections, `;`, `&`, `$(…)` and backquotes are refused with the character named, as is
 * a variable the test did not define.
 *
 * curl: -X/--request, -H/--header, -d/--data/--data-ascii/--data-raw/--data-binary (several are
 * joined with "&", form content type unless a header sets one), --data-urlencode, --json, -G/--get,
 * --url, and the output-only flags -s -S -f -i (also combined, e.g. -sS). Any other flag is refused,
 * naming it: teach this file the flag before a README uses it.
 *
 * Values from earlier answers: a fence whose info string carries `answers:` followed by
 * `NAME=N.path` items, e.g. ```` ```sh answers: TOKEN_ID=1.id ````, sets the variable NAME, after the
 * block's N-th curl ran, to the field `path` (dots between keys, digits index lists) of its JSON
 * answer; later examples use it as $NAME. Renderers show only the first word of the info string,
 * so say in the prose where the reader gets the value.
 *
 * Besides curl, fenced lines that start `node scripts/…` (a script of this repository, e.g. the jobs
 * signer) and `export NAME=value …` are read too (extractCommands): the test runs the scripts with the
 * exported variables in their environment, in reading order with the curls.
 */

export interface Capture {
  name: string;
  path: string[];
}

export interface CurlExample {
  /** 1-based line of README.md where the command starts. */
  line: number;
  /** The command as written, continuation lines included. */
  source: string;
  /** Variables to set from this example's answer once it ran. */
  captures: Capture[];
}

export interface CurlRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string;
}

const STARTS_CURL = /^\s*(?:\$\s+)?curl(?:\s|$)/;
const FENCE = /^\s*(```+|~~~+)(.*)$/;

function endsWithContinuation(line: string): boolean {
  const m = /(\\+)$/.exec(line);
  return !!m && m[1].length % 2 === 1;
}

function parseAnswers(info: string, line: number): Array<{ index: number } & Capture> {
  const m = /(?:^|\s)answers:\s*(.*)$/.exec(info);
  if (!m) return [];
  return m[1]
    .split(/\s+/)
    .filter(Boolean)
    .map((item) => {
      const c = /^([A-Za-z_][A-Za-z0-9_]*)=(\d+)\.([^\s]+)$/.exec(item);
      if (!c) throw new Error(`README.md:${line}: "answers:" item "${item}" must be NAME=N.path (N-th curl of the block, a dotted path into its JSON answer)`);
      return { name: c[1], index: Number(c[2]), path: c[3].split('.') };
    });
}

/** Every curl example of a Markdown text, in reading order. */
export function extractExamples(markdown: string): CurlExample[] {
  const lines = markdown.split('\n');
  const out: CurlExample[] = [];
  let fence: { marker: string; line: number; answers: Array<{ index: number } & Capture>; examples: CurlExample[] } | undefined;
  const closeFence = () => {
    for (const a of fence!.answers) {
      const ex = fence!.examples[a.index - 1];
      if (!ex) throw new Error(`README.md:${fence!.line}: "answers:" names curl ${a.index} of a block that has ${fence!.examples.length}`);
      ex.captures.push({ name: a.name, path: a.path });
    }
    fence = undefined;
  };
  for (let i = 0; i < lines.length; i++) {
    const f = FENCE.exec(lines[i]);
    if (f && !fence) {
      fence = { marker: f[1], line: i + 1, answers: parseAnswers(f[2], i + 1), examples: [] };
      continue;
    }
    if (fence && f && f[1].startsWith(fence.marker) && f[2].trim() === '') {
      closeFence();
      continue;
    }
    if (!fence) {
      for (const m of lines[i].matchAll(/`(curl\s[^`]+)`/g)) out.push({ line: i + 1, source: m[1], captures: [] });
      continue;
    }
    if (!STARTS_CURL.test(lines[i])) {
      if (/\bcurl\b/.test(lines[i])) throw new Error(`README.md:${i + 1}: curl that does not start the line cannot be run by the README test: ${lines[i].trim()}`);
      continue;
    }
    const start = i;
    let source = lines[i].replace(/^\s*\$\s+/, '');
    while (endsWithContinuation(lines[i]) && i + 1 < lines.length) source += '\n' + lines[++i];
    const ex: CurlExample = { line: start + 1, source, captures: [] };
    fence.examples.push(ex);
    out.push(ex);
  }
  if (fence) throw new Error(`README.md:${fence.line}: fenced block never closed`);
  return out;
}

const STARTS_COMMAND = /^\s*(?:\$\s+)?(node\s+scripts\/|export\s)/;

/** A fenced `node scripts/…` or `export …` line of a Markdown text (no continuation lines). */
export interface CommandExample {
  line: number;
  kind: 'script' | 'export';
  source: string;
}

/** Every fenced `node scripts/…` and `export …` line, in reading order. */
export function extractCommands(markdown: string): CommandExample[] {
  const out: CommandExample[] = [];
  let fence: string | undefined;
  markdown.split('\n').forEach((text, i) => {
    const f = FENCE.exec(text);
    if (f && !fence) fence = f[1];
    else if (f && fence && f[1].startsWith(fence) && f[2].trim() === '') fence = undefined;
    else if (fence) {
      const m = STARTS_COMMAND.exec(text);
      if (!m) return;
      if (endsWithContinuation(text)) throw new Error(`README.md:${i + 1}: a continued ${m[1].trim()} line cannot be run by the README test`);
      out.push({ line: i + 1, kind: m[1].startsWith('node') ? 'script' : 'export', source: text.replace(/^\s*\$\s+/, '') });
    }
  });
  return out;
}

const VAR = /^(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))/;

/** Splits one command into words as a POSIX shell would, for the subset documented above. */
export function shellWords(cmd: string, vars: Record<string, string>): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let i = 0;
  const expand = (): string => {
    const m = VAR.exec(cmd.slice(i + 1));
    if (!m) throw new Error(`unsupported shell syntax after "$" in: ${cmd}`);
    const name = m[1] ?? m[2];
    if (!Object.hasOwn(vars, name)) throw new Error(`$${name} is not defined for the README test (known: ${Object.keys(vars).join(', ') || 'none'})`);
    i += 1 + m[0].length;
    return vars[name];
  };
  while (i < cmd.length) {
    const c = cmd[i];
    if (c === '\\' && cmd[i + 1] === '\n') {
      i += 2;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      i++;
    } else if (c === '#' && !inWord) {
      while (i < cmd.length && cmd[i] !== '\n') i++;
    } else if (c === '\\') {
      word += cmd[i + 1] ?? '';
      inWord = true;
      i += 2;
    } else if (c === "'") {
      const end = cmd.indexOf("'", i + 1);
      if (end < 0) throw new Error(`unterminated ' in: ${cmd}`);
      word += cmd.slice(i + 1, end);
      inWord = true;
      i = end + 1;
    } else if (c === '"') {
      inWord = true;
      i++;
      for (;;) {
        if (i >= cmd.length) throw new Error(`unterminated " in: ${cmd}`);
        const d = cmd[i];
        if (d === '"') break;
        if (d === '\\' && '"\\$`\n'.includes(cmd[i + 1] ?? '')) {
          if (cmd[i + 1] !== '\n') word += cmd[i + 1];
          i += 2;
        } else if (d === '$') {
          if (cmd[i + 1] === '(') throw new Error(`unsupported shell syntax "$(" in: ${cmd}`);
          word += expand();
        } else if (d === '`') {
          throw new Error(`unsupported shell syntax "\`" in: ${cmd}`);
        } else {
          word += d;
          i++;
        }
      }
      i++;
    } else if (c === '$') {
      if (cmd[i + 1] === '(') throw new Error(`unsupported shell syntax "$(" in: ${cmd}`);
      word += expand();
      inWord = true;
    } else if ('|;&<>()`'.includes(c)) {
      throw new Error(`unsupported shell syntax "${c}" in: ${cmd}`);
    } else {
      word += c;
      inWord = true;
      i++;
    }
  }
  if (inWord) words.push(word);
  return words;
}

const OUTPUT_ONLY = new Set(['s', 'S', 'f', 'i']);
const OUTPUT_ONLY_LONG = new Set(['--silent', '--show-error', '--fail', '--include']);
const DATA = new Set(['-d', '--data', '--data-ascii', '--data-raw', '--data-binary']);

/** curl's --data-urlencode forms "content", "=content" and "name=content"; the file forms (an "@" first) are refused. */
function urlencodeData(v: string): string {
  const at = v.search(/[=@]/);
  if (at < 0) return encodeURIComponent(v);
  if (v[at] === '@') throw new Error(`--data-urlencode from a file is not supported: ${v}`);
  return at === 0 ? encodeURIComponent(v.slice(1)) : `${v.slice(0, at)}=${encodeURIComponent(v.slice(at + 1))}`;
}

/** The request curl would send for these words (words[0] is "curl"). */
export function curlRequest(words: string[]): CurlRequest {
  if (words[0] !== 'curl') throw new Error(`not a curl command: ${words.join(' ')}`);
  let method: string | undefined;
  let url: string | undefined;
  let get = false;
  const headers: Record<string, string> = {};
  const data: string[] = [];
  const setUrl = (u: string) => {
    if (url !== undefined) throw new Error(`two URLs in one curl: ${url} and ${u}`);
    url = u;
  };
  for (let i = 1; i < words.length; i++) {
    const w = words[i];
    const value = (flag: string): string => {
      if (w.length > flag.length && !w.startsWith('--')) return w.slice(flag.length);
      if (i + 1 >= words.length) throw new Error(`curl ${flag} needs a value`);
      return words[++i];
    };
    const short = w.startsWith('-') && !w.startsWith('--') ? w.slice(0, 2) : w;
    if (short === '-X' || w === '--request') method = value(short === '-X' ? '-X' : w).toUpperCase();
    else if (short === '-H' || w === '--header') {
      const h = value(short === '-H' ? '-H' : w);
      const colon = h.indexOf(':');
      if (colon <= 0) throw new Error(`curl header "${h}" has no "name:"`);
      headers[h.slice(0, colon).trim().toLowerCase()] = h.slice(colon + 1).trim();
    } else if (short === '-d' || DATA.has(w)) {
      const d = value(short === '-d' ? '-d' : w);
      if (d.startsWith('@') && w !== '--data-raw') throw new Error(`curl data from a file is not supported: ${d}`);
      data.push(d);
    } else if (w === '--data-urlencode') data.push(urlencodeData(value(w)));
    else if (w === '--json') {
      data.push(value(w));
      headers['content-type'] ??= 'application/json';
      headers.accept ??= 'application/json';
    } else if (w === '-G' || w === '--get') get = true;
    else if (w === '--url') setUrl(value(w));
    else if (OUTPUT_ONLY_LONG.has(w) || (/^-[A-Za-z]+$/.test(w) && [...w.slice(1)].every((ch) => OUTPUT_ONLY.has(ch)))) continue;
    else if (w.startsWith('-')) throw new Error(`curl flag "${w}" is not interpreted by the README test: teach it to test/helpers/readme-curl.ts`);
    else setUrl(w);
  }
  if (url === undefined) throw new Error(`curl without a URL: ${words.join(' ')}`);
  const joined = data.join('&');
  if (get && data.length) url += (url.includes('?') ? '&' : '?') + joined;
  const body = data.length && !get ? joined : undefined;
  if (body !== undefined) headers['content-type'] ??= 'application/x-www-form-urlencoded';
  return { method: method ?? (body !== undefined ? 'POST' : 'GET'), url, headers, ...(body !== undefined ? { body } : {}) };
}

/** The value at a dotted path of a parsed JSON answer, as a string for $NAME; throws naming what is missing. */
export function answerValue(json: unknown, path: string[]): string {
  let v: unknown = json;
  for (const key of path) {
    if (v === null || typeof v !== 'object' || !Object.hasOwn(v, key)) throw new Error(`the answer has no "${path.join('.')}" (stopped at "${key}"): ${JSON.stringify(json).slice(0, 300)}`);
    v = (v as Record<string, unknown>)[key];
  }
  if (typeof v === 'object' && v !== null) throw new Error(`"${path.join('.')}" of the answer is not a single value`);
  return String(v);
}
