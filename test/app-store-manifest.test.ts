import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ROOT, tempDir } from './helpers/cluster.ts';
import { loadCatalog } from '../plugins/app-store/catalog.ts';
import { parseManifest, renderEnv, servicesOf } from '../plugins/app-store/manifest.ts';

const base = () => ({
  name: 'demo',
  title: 'Demo',
  image: 'outpost-test/busybox:latest',
  env: { DB: '${host.db}', PASS: '${secret.pw}', NAME: '${app}' },
  ports: [{ container: 8080, role: 'http' }],
  volumes: [{ name: 'data', path: '/data' }],
  health: { type: 'http', port: 8080 },
  secrets: { pw: {} },
  sidecars: [{ name: 'db', image: 'mysql:8.0', env: { MYSQL_PASSWORD: '${secret.pw}' }, ports: [{ container: 3306, role: 'db' }], volumes: [{ name: 'db', path: '/var/lib/mysql' }] }],
});

test('the shipped catalog and the test apps all validate', async () => {
  const c = await loadCatalog(['configs/apps', 'test/apps'], ROOT);
  assert.deepEqual([...c.errors], []);
  for (const name of ['nginx', 'redmine', 'wordpress', 'gitea', 'busybox-httpd', 'busybox-stack', 'busybox-broken']) assert.ok(c.apps.has(name), name);
  assert.equal(c.apps.get('wordpress')!.sidecars[0].name, 'mysql');
  assert.equal(c.apps.get('redmine')!.sidecars[0].ports[0].role, 'db');
});

test('a manifest gets its defaults filled in', () => {
  const m = parseManifest(base());
  assert.equal(m.ports[0].protocol, 'tcp');
  assert.deepEqual(m.health, { type: 'http', port: 8080, path: '/', expect: [200, 399] });
  assert.deepEqual(m.secrets.pw, { length: 24, alphabet: 'alnum' });
});

test('bad manifests are refused with a message naming the field', () => {
  const cases: Array<[string, (m: any) => void, RegExp]> = [
    ['bad app name', (m) => (m.name = 'Demo'), /name: app names match/],
    ['one-letter name', (m) => (m.name = 'd'), /name:/],
    ['image with spaces', (m) => (m.image = 'nginx latest'), /image: not a valid image reference/],
    ['image with a shell character', (m) => (m.image = 'nginx;rm'), /image: not a valid image reference/],
    ['unknown field', (m) => (m.privileged = true), /privileged/],
    ['unknown port role', (m) => (m.ports[0].role = 'web'), /ports\.0\.role/],
    ['port out of range', (m) => (m.ports[0].container = 70000), /ports\.0\.container/],
    ['relative volume path', (m) => (m.volumes[0].path = 'data'), /volumes\.0\.path: volume paths are absolute/],
    ['undeclared secret', (m) => (m.env.X = '${secret.nope}'), /env\.X: unknown placeholder \$\{secret\.nope\}/],
    ['unknown sidecar host', (m) => (m.env.X = '${host.redis}'), /env\.X: unknown placeholder \$\{host\.redis\}/],
    ['unknown placeholder kind', (m) => (m.env.X = '${env.HOME}'), /unknown placeholder \$\{env\.HOME\}/],
    ['health port not published', (m) => (m.health.port = 9000), /health\.port: health port 9000 is not one of this container's tcp ports/],
    ['duplicate sidecar', (m) => m.sidecars.push({ ...m.sidecars[0], volumes: [] }), /sidecars\.1\.name: sidecar "db" is declared twice/],
    ['duplicate volume across services', (m) => (m.sidecars[0].volumes[0].name = 'data'), /sidecars\.0\.volumes\.0\.name: volume "data" is declared twice/],
    ['duplicate port', (m) => m.ports.push({ container: 8080, role: 'admin' }), /port 8080\/tcp is declared twice/],
    ['command as a shell string', (m) => (m.command = 'httpd -f'), /command/],
    ['bad env name', (m) => (m.env['BAD-NAME'] = 'x'), /env\.BAD-NAME: Invalid key/],
    ['short secret', (m) => (m.secrets.pw = { length: 4 }), /secrets\.pw\.length/],
  ];
  for (const [what, change, message] of cases) {
    const m = base();
    change(m);
    assert.throws(() => parseManifest(m), message, what);
  }
  const many = base();
  many.sidecars = [];
  many.ports = Array.from({ length: 10 }, (_, i) => ({ container: 8000 + i, role: 'other' }));
  const side = { name: 'a', image: 'x', ports: Array.from({ length: 10 }, (_, i) => ({ container: 7000 + i, role: 'other' })) };
  (many as any).sidecars = [side, { ...side, name: 'b', ports: [{ container: 1, role: 'other' }] }];
  assert.throws(() => parseManifest(many), /at most 20 ports \(this one has 21\)/);
});

test('env placeholders are filled for the container; sidecars start before the app', () => {
  const m = parseManifest(base());
  assert.deepEqual(renderEnv(m.env, 'demo', { pw: 's3cr3t-value' }), ['DB=websoft9-demo-db', 'PASS=s3cr3t-value', 'NAME=demo']);
  assert.deepEqual(servicesOf(m).map((s) => [s.service, s.container]), [['db', 'websoft9-demo-db'], ['main', 'websoft9-demo']]);
});

test('the catalog reports broken files by name and lets a later folder override an app', async () => {
  const dir = await tempDir('outpost-catalog-');
  try {
    await mkdir(join(dir, 'one'));
    await mkdir(join(dir, 'two'));
    await writeFile(join(dir, 'one', 'demo.json'), JSON.stringify(base()));
    await writeFile(join(dir, 'two', 'demo.json'), JSON.stringify({ ...base(), title: 'Demo 2' }));
    await writeFile(join(dir, 'one', 'broken.json'), '{ not json');
    await writeFile(join(dir, 'one', 'other.json'), JSON.stringify({ ...base(), name: 'mismatch' }));
    const c = await loadCatalog(['one', 'two'], dir);
    assert.equal(c.apps.get('demo')!.title, 'Demo 2');
    assert.match(c.errors.get('broken')!, /invalid manifest broken\.json/);
    assert.match(c.errors.get('other')!, /name "mismatch" does not match the file name/);
    await assert.rejects(loadCatalog(['missing'], dir), /catalog folder .*missing cannot be read/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
