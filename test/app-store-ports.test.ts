import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdir, writeFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from './helpers/cluster.ts';
import { PortAllocator, PortsExhaustedError, canBindTcp, listeningPorts, pickPorts } from '../plugins/app-store/ports.ts';

const range = { from: 9001, to: 9005 };

test('pickPorts takes the lowest free ports and names the range when too few are left', () => {
  assert.deepEqual(pickPorts(range, 2, new Set()), [9001, 9002]);
  assert.deepEqual(pickPorts(range, 2, new Set([9001, 9003])), [9002, 9004]);
  assert.deepEqual(pickPorts(range, 0, new Set()), []);
  assert.throws(() => pickPorts(range, 3, new Set([9001, 9002, 9004])), (err: Error) => err instanceof PortsExhaustedError && /port range 9001-9005 exhausted: 3 ports needed, 2 free/.test(err.message));
});

test('the allocator never hands out a taken port, nor one reserved by an install in flight', async () => {
  const taken = new Set([9002]);
  const alloc = new PortAllocator(range, { taken: async () => new Set(taken) });
  const [a, b] = await Promise.all([alloc.allocate('a', 2), alloc.allocate('b', 1)]);
  assert.deepEqual(a, [9001, 9003]);
  assert.deepEqual(b, [9004]);
  assert.deepEqual([...alloc.reserved()].sort(), [9001, 9003, 9004]);
  await assert.rejects(alloc.allocate('c', 2), /port range 9001-9005 exhausted: 2 ports needed, 1 free/);
  assert.equal(alloc.reservationOf('c'), undefined, 'a refused allocation reserves nothing');
  await assert.rejects(alloc.allocate('a', 1), /a already holds reserved ports/);
  alloc.release('a');
  assert.deepEqual(await alloc.allocate('c', 2), [9001, 9003]);
});

test('concurrent allocations from many installs are all distinct and share scans', async () => {
  let scans = 0;
  const alloc = new PortAllocator({ from: 9001, to: 9099 }, { taken: async () => (scans++, new Set([9010, 9020])) });
  const got = await Promise.all(Array.from({ length: 20 }, (_, i) => alloc.allocate(`app-${i}`, 2)));
  const flat = got.flat();
  assert.equal(new Set(flat).size, 40);
  assert.ok(!flat.includes(9010) && !flat.includes(9020));
  assert.ok(scans <= 2, `20 queued allocations took ${scans} scans`);
  await assert.rejects(alloc.allocate('one-too-many', 58), PortsExhaustedError);
});

test('a port failing the bind check is skipped and the next free one taken', async () => {
  const refused = new Set([9001, 9003]);
  const alloc = new PortAllocator(range, { taken: async () => new Set(), canBind: async (p) => !refused.has(p) });
  assert.deepEqual(await alloc.allocate('x', 2), [9002, 9004]);
  refused.add(9005);
  await assert.rejects(alloc.allocate('y', 1), PortsExhaustedError);
});

test('a failed scan fails the queued allocations and the next one scans again', async () => {
  let fail = true;
  const alloc = new PortAllocator(range, { taken: async () => { if (fail) throw new Error('Engine gone'); return new Set(); } });
  await assert.rejects(Promise.all([alloc.allocate('x', 1), alloc.allocate('y', 1)]), /Engine gone/);
  fail = false;
  assert.deepEqual(await alloc.allocate('x', 1), [9001]);
});

test('a range change applies to the next allocation', async () => {
  const alloc = new PortAllocator(range, { taken: async () => new Set() });
  alloc.setRange({ from: 9101, to: 9101 });
  assert.deepEqual(await alloc.allocate('x', 1), [9101]);
  await assert.rejects(alloc.allocate('y', 1), /9101-9101 exhausted/);
});

test('listening sockets are read from /proc/net (tcp LISTEN, bound udp; v4 and v6)', async () => {
  const dir = await tempDir('outpost-procnet-');
  try {
    await mkdir(join(dir, 'net'));
    const head = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n';
    await writeFile(join(dir, 'net', 'tcp'), head + '   0: 00000000:2329 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1\n   1: 0100007F:232A 0100007F:9999 01 00000000:00000000 00:00000000 00000000     0        0 2\n');
    await writeFile(join(dir, 'net', 'tcp6'), head + '   0: 00000000000000000000000000000000:232B 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3\n');
    await writeFile(join(dir, 'net', 'udp'), head + '   0: 00000000:232C 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4\n');
    const ports = await listeningPorts(join(dir, 'net'));
    assert.deepEqual([...ports].sort(), [9001, 9003, 9004], 'an established connection (state 01) is not a listener');
    assert.deepEqual([...(await listeningPorts(join(dir, 'nowhere')))], []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('canBindTcp is false while a socket listens on the port and true once it is closed', async () => {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as net.AddressInfo).port;
  assert.equal(await canBindTcp(port), false);
  assert.ok((await listeningPorts()).has(port), 'the real /proc/net/tcp lists our listener');
  await new Promise((resolve) => srv.close(resolve));
  assert.equal(await canBindTcp(port), true);
});
