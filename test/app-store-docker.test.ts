import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PullProgress, demuxLogs } from '../plugins/app-store/docker.ts';

test('pull progress counts bytes over the layers seen, whole for finished ones, never above 100', () => {
  const p = new PullProgress();
  assert.equal(p.add({ status: 'Pulling from library/nginx', id: 'latest' }), 0);
  assert.equal(p.add({ id: 'a', status: 'Downloading', progressDetail: { current: 50, total: 100 } }), 50);
  assert.equal(p.add({ id: 'b', status: 'Downloading', progressDetail: { current: 0, total: 300 } }), 12);
  assert.equal(p.add({ id: 'a', status: 'Download complete' }), 25);
  assert.equal(p.add({ id: 'b', status: 'Downloading', progressDetail: { current: 300, total: 300 } }), 100);
  assert.equal(p.add({ id: 'b', status: 'Extracting', progressDetail: { current: 10, total: 300 } }), 100, 'extraction does not move the figure back');
  assert.equal(p.add({ id: 'c', status: 'Already exists' }), 100);
});

test('container logs lose the 8-byte frame headers Docker puts on non-TTY streams', () => {
  const frame = (stream: number, text: string) => {
    const body = Buffer.from(text);
    const head = Buffer.alloc(8);
    head[0] = stream;
    head.writeUInt32BE(body.length, 4);
    return Buffer.concat([head, body]);
  };
  assert.equal(demuxLogs(Buffer.concat([frame(1, 'starting\n'), frame(2, 'boom: cannot start\n')])), 'starting\nboom: cannot start\n');
  assert.equal(demuxLogs(Buffer.from('plain tty output\n')), 'plain tty output\n');
  assert.equal(demuxLogs(Buffer.alloc(0)), '');
});
