import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatIso, formatLocal, parseRuntime, zonedToUtc } from '../plugins/jobs/runtime.ts';
import { rawMember } from '../plugins/jobs/json-raw.ts';

const SH = 'Asia/Shanghai';
const iso = (ms: number | undefined) => new Date(ms!).toISOString();

test('Y-m-d H:i:s is read in Asia/Shanghai (UTC+8 all year, no DST)', () => {
  assert.equal(iso(parseRuntime('2021-07-27 17:30:30', SH)), '2021-07-27T09:30:30.000Z');
  assert.equal(iso(parseRuntime('2021-01-15 00:00:00', SH)), '2021-01-14T16:00:00.000Z');
  // Midsummer and midwinter give the same offset.
  assert.equal(parseRuntime('2021-12-21 12:00:00', SH)! - Date.UTC(2021, 11, 21, 4), 0);
  assert.equal(iso(parseRuntime('2021-07-27T17:30:30', SH)), '2021-07-27T09:30:30.000Z', 'a T separator without offset is local too');
});

test('Y-m-d H:i:s in another zone follows its DST rules', () => {
  const NY = 'America/New_York';
  assert.equal(iso(parseRuntime('2024-01-15 09:00:00', NY)), '2024-01-15T14:00:00.000Z');
  assert.equal(iso(parseRuntime('2024-07-15 09:00:00', NY)), '2024-07-15T13:00:00.000Z');
  // Spring-forward gap: 02:30 does not exist; the pre-change offset applies (03:30 EDT), as PHP does.
  assert.equal(iso(zonedToUtc(2024, 3, 10, 2, 30, 0, NY)), '2024-03-10T07:30:00.000Z');
  // Fall-back overlap: 01:30 happens twice; the earlier (EDT) is taken.
  assert.equal(iso(zonedToUtc(2024, 11, 3, 1, 30, 0, NY)), '2024-11-03T05:30:00.000Z');
  // Half-hour zone.
  assert.equal(iso(parseRuntime('2024-01-01 00:00:00', 'Asia/Kolkata')), '2023-12-31T18:30:00.000Z');
});

test('ISO 8601 with an offset, @unix and JSON numbers are absolute', () => {
  assert.equal(iso(parseRuntime('2021-07-27T17:30:30+08:00', 'UTC')), '2021-07-27T09:30:30.000Z');
  assert.equal(iso(parseRuntime('2021-07-27T17:30:30.250-0330', SH)), '2021-07-27T21:00:30.250Z');
  assert.equal(iso(parseRuntime('2021-07-27T09:30Z', SH)), '2021-07-27T09:30:00.000Z');
  assert.equal(iso(parseRuntime('@1627371056', SH)), '2021-07-27T07:30:56.000Z');
  // The document types runtime as int: read as Unix seconds (the original misread "1627371056" as the year 1056).
  assert.equal(iso(parseRuntime(1627371056, SH)), '2021-07-27T07:30:56.000Z');
});

test('absent runtime means now; anything unparseable names the accepted forms', () => {
  for (const v of [undefined, null, '']) assert.equal(parseRuntime(v, SH), undefined);
  for (const [v, re] of [
    ['tomorrow', /"tomorrow" is not "Y-m-d H:i:s" \(Asia\/Shanghai\), ISO 8601 with an offset, or "@<unix seconds>"/],
    ['2021-02-30 10:00:00', /not a valid date/],
    ['2021-07-27 24:00:00', /not a valid date/],
    ['1627371056', /is not "Y-m-d H:i:s"/],
    [1.5, /whole Unix seconds/],
    [-1, /whole Unix seconds/],
    [1627371056000, /after the year 9999 \(milliseconds\? send seconds\)/],
    [true, /must be a string/],
    [{ at: 1 }, /must be a string/],
  ] as const) assert.throws(() => parseRuntime(v, SH), re, String(v));
});

test('times print back as Y-m-d H:i:s and ISO with the zone offset', () => {
  const ms = Date.UTC(2021, 6, 27, 9, 30, 30, 123);
  assert.equal(formatLocal(ms, SH), '2021-07-27 17:30:30');
  assert.equal(formatIso(ms, SH), '2021-07-27T17:30:30.123+08:00');
  assert.equal(formatIso(ms, 'America/St_Johns'), '2021-07-27T07:00:30.123-02:30');
  assert.equal(parseRuntime(formatLocal(ms, SH), SH), ms - 123);
});

test('rawMember returns a member exactly as written', () => {
  const body = '{ "taskNo" : "a\\"}", "content" :{"id": 12345678901234567890, "s": "]}\\"", "n": [1.50, {"x": null}]} , "name": "n" }';
  assert.equal(rawMember(body, 'content'), '{"id": 12345678901234567890, "s": "]}\\"", "n": [1.50, {"x": null}]}');
  assert.equal(rawMember(body, 'taskNo'), '"a\\"}"');
  assert.equal(rawMember('{"content":1e3,"x":true}', 'content'), '1e3');
  assert.equal(rawMember('{"content":null}', 'content'), 'null');
  assert.equal(rawMember('{"content":1,"content":"last"}', 'content'), '"last"', 'the last duplicate wins, as in JSON.parse');
  assert.equal(rawMember('{"a":1}', 'content'), undefined);
  assert.equal(rawMember('{"\\u0063ontent":[]}', 'content'), '[]', 'keys are compared decoded');
});
