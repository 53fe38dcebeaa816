/**
 * The HTTP API over real HTTP (port 0) with the local executor doing real builds: one call
 * from an archive to a published service, tenants kept apart, services changed without a
 * rebuild, and a server killed mid-build that finishes the build after a restart. Every
 * response is checked against /openapi.json.
 */
import { spawn } from 'node:child_process';
import { appendFile, cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { TokenStore } from '../../src/api/tokens.js';
import { startServer, type Running } from '../../src/server.js';
import { run, runOk } from '../../src/util/exec.js';
import { ROOT } from '../helpers/cli.js';
import { expectDocumented } from '../helpers/openapi.js';
import { freePort } from '../helpers/registry.js';

const registry = inject('registryHost');
let stateDir: string;
let work: string;
let server: Running;
let base: string;
let acme: string;
let goodArchive: Blob;
let other: string;
const logs: Array<Record<string, unknown>> = [];

interface Answer {
  status: number;
  body: any;
  headers: Headers;
}

async function api(
  method: string,
  path: string,
  opts: { token?: string; json?: unknown; form?: FormData; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
  let body: string | FormData | undefined;
  if (opts.json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(opts.json);
  } else if (opts.form) body = opts.form;
  const res = await fetch(`${base}${path}`, { method, headers, body });
  const type = res.headers.get('content-type') ?? '';
  const text = await res.text();
  const parsed = type.includes('application/json') ? JSON.parse(text) : text;
  if (res.status !== 204) expectDocumented(method, path, res.status, type, parsed);
  return { status: res.status, body: parsed, headers: res.headers };
}

async function tarGz(dir: string): Promise<Blob> {
  const out = join(work, `src-${Math.random().toString(36).slice(2)}.tar.gz`);
  await runOk('tar', ['-czf', out, '-C', dir, '.']);
  return new Blob([await readFile(out)]);
}

function form(source: Blob | undefined, spec?: unknown, filename = 'source.tar.gz'): FormData {
  const f = new FormData();
  if (spec !== undefined) f.set('spec', JSON.stringify(spec));
  if (source) f.set('source', source, filename);
  return f;
}

async function waitFor(token: string, id: string, until: (b: any) => boolean, timeoutMs = 600_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await api('GET', `/v1/builds/${id}`, { token });
    if (until(r.body)) return r.body;
    if (Date.now() > deadline) throw new Error(`build ${id} stuck: ${JSON.stringify(r.body)}`);
    await new Promise((res) => setTimeout(res, 250));
  }
}

beforeAll(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'svcbuild-api-state-'));
  work = await mkdtemp(join(tmpdir(), 'svcbuild-api-work-'));
  const config = await loadConfig({ cwd: ROOT, home: ROOT, env: { SVCBUILD_REGISTRY: registry, SVCBUILD_STATE_DIR: stateDir } });
  server = await startServer(config, ROOT, { port: 0, log: (e) => logs.push(e), archiveLimits: { maxArchiveBytes: 2 * 1024 * 1024 } });
  base = `http://127.0.0.1:${server.port}`;
  const tokens = new TokenStore(join(stateDir, 'tokens.json'));
  acme = await tokens.create('acme');
  other = await tokens.create('other');
  goodArchive = await tarGz(join(ROOT, 'examples/node-hello'));
});

afterAll(async () => {
  await server?.close();
  await rm(stateDir, { recursive: true, force: true });
  await rm(work, { recursive: true, force: true });
});

describe('the API: archive in, service out', () => {
  let buildId: string;

  it('answers health, readiness, metrics and its OpenAPI document without a token', async () => {
    expect((await api('GET', '/healthz')).body).toEqual({ status: 'ok' });
    expect((await api('GET', '/readyz')).body).toEqual({ status: 'ready', executor: 'local' });
    const doc = await api('GET', '/openapi.json');
    expect(doc.body.openapi).toBe('3.1.0');
    const m = await api('GET', '/metrics');
    expect(m.body).toContain('# TYPE svcbuild_http_requests_total counter');
  });

  it('refuses requests without a valid token, with one error shape and the request id', async () => {
    const r = await api('GET', '/v1/builds', { headers: { 'X-Request-Id': 'test-req-1' } });
    expect(r.status).toBe(401);
    expect(r.body.error.code).toBe('unauthorized');
    expect(r.body.error.requestId).toBe('test-req-1');
    expect(r.headers.get('www-authenticate')).toBe('Bearer realm="svcbuild"');
    // AND the request id is in the structured log
    expect(logs.some((l) => l.requestId === 'test-req-1' && l.status === 401 && l.msg === 'request')).toBe(true);
    expect((await api('GET', '/v1/builds', { token: 'svcb_not-a-real-token' })).status).toBe(401);
  });

  it('builds an uploaded archive in one call and shows every step', { timeout: 900_000 }, async () => {
    // GIVEN the Python example as a tar.gz WHEN it is submitted
    const sub = await api('POST', '/v1/builds', {
      token: acme,
      form: form(await tarGz(join(ROOT, 'examples/python-hello')), { name: 'hello', route: '/hello' }),
    });
    // THEN it is accepted with an id and links
    expect(sub.status).toBe(202);
    expect(sub.headers.get('location')).toBe(`/v1/builds/${sub.body.id}`);
    expect(sub.body.links.logs).toBe(`/v1/builds/${sub.body.id}/logs`);
    buildId = sub.body.id;
    // AND it ends succeeded with image, overlay and chart, each step timed
    const done = await waitFor(acme, buildId, (b) => ['succeeded', 'failed', 'cancelled'].includes(b.status));
    expect(done.status, JSON.stringify(done.error)).toBe('succeeded');
    expect(done.service).toBe('hello');
    expect(done.qualifiedService).toBe('acme-hello');
    expect(done.image).toMatch(new RegExp(`^${registry}/svcbuild/acme-hello@sha256:[a-f0-9]{64}$`));
    expect(done.overlay.bytes).toBeGreaterThan(1000);
    expect(done.chart.ref).toBe(`oci://${registry}/svcbuild/charts/acme-hello`);
    // (no vulnerability DB in this registry: the scan step reports itself skipped)
    expect(done.steps.map((s: any) => [s.name, s.status]).filter(([n]: string[]) => !n!.startsWith('base:'))).toEqual([
      ['source', 'succeeded'],
      ['build', 'succeeded'],
      ['scan', 'skipped'],
      ['overlay', 'succeeded'],
      ['publish', 'succeeded'],
    ]);
    expect(done.source.type).toBe('archive');
    expect(done.source.format).toBe('tar.gz');
  });

  it('streams the logs as server-sent events until the build ends', async () => {
    const res = await fetch(`${base}/v1/builds/${buildId}/logs?follow=true`, { headers: { Authorization: `Bearer ${acme}` } });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const text = await res.text();
    expect(text).toContain('data: [build] succeeded');
    expect(text.trimEnd().endsWith('event: end\ndata: {"status":"succeeded"}')).toBe(true);
    const plain = await api('GET', `/v1/builds/${buildId}/logs`, { token: acme });
    expect(plain.body).toContain('[publish] succeeded');
  });

  it('lists builds filtered by service and status', async () => {
    expect((await api('GET', '/v1/builds?service=hello', { token: acme })).body.items.map((b: any) => b.id)).toEqual([buildId]);
    expect((await api('GET', '/v1/builds?status=failed', { token: acme })).body.items).toEqual([]);
    const bad = await api('GET', '/v1/builds?status=exploded', { token: acme });
    expect(bad.status).toBe(400);
    expect(bad.body.error.issues[0].path).toBe('query.status');
  });

  it('keeps tenants apart: another tenant gets 404 for everything of acme', async () => {
    for (const [m, p] of [
      ['GET', `/v1/builds/${buildId}`],
      ['GET', `/v1/builds/${buildId}/logs`],
      ['POST', `/v1/builds/${buildId}/cancel`],
      ['POST', `/v1/builds/${buildId}/retry`],
      ['GET', '/v1/services/hello'],
      ['DELETE', '/v1/services/hello'],
    ] as const) {
      const r = await api(m, p, { token: other });
      expect(r.status, `${m} ${p}`).toBe(404);
      expect(r.body.error.code).toBe('not_found');
    }
    expect((await api('GET', '/v1/builds', { token: other })).body.items).toEqual([]);
  });

  it('changes a service’s configuration without a rebuild, then deletes it', async () => {
    const before = await api('GET', '/v1/services/hello', { token: acme });
    expect(before.body.config).toEqual({ port: 8080, route: '/hello', env: {}, replicas: 1, memory: '256Mi', cpu: '250m' });
    // WHEN replicas, memory and env change
    const after = await api('PATCH', '/v1/services/hello', {
      token: acme,
      json: { replicas: 2, memory: '512Mi', env: { GREETING: 'hi' } },
    });
    // THEN a new revision is published with the same image, and no build was added
    expect(after.status).toBe(200);
    expect(after.body.revision).toBe(before.body.revision + 1);
    expect(after.body.image).toBe(before.body.image);
    expect(after.body.chart.version).toBe(`${before.body.chart.version}.r${after.body.revision}`);
    expect(after.body.config).toEqual({ port: 8080, route: '/hello', env: { GREETING: 'hi' }, replicas: 2, memory: '512Mi', cpu: '250m' });
    expect((await api('GET', '/v1/builds', { token: acme })).body.items).toHaveLength(1);
    // AND the republished chart carries the new values
    const pulled = await run('helm', ['show', 'values', after.body.chart.ref, '--version', after.body.chart.version, '--plain-http']);
    expect(pulled.stdout).toContain('replicas: 2');
    expect(pulled.stdout).toContain('GREETING: hi');
    // AND bad values are refused naming the field
    const bad = await api('PATCH', '/v1/services/hello', { token: acme, json: { replicas: -1, memory: 'lots' } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.issues.map((i: any) => i.path).sort()).toEqual(['memory', 'replicas']);
    // WHEN deleted THEN it is gone
    expect((await api('DELETE', '/v1/services/hello', { token: acme })).status).toBe(204);
    expect((await api('GET', '/v1/services/hello', { token: acme })).status).toBe(404);
  });

  it('returns the same build for a retried submission with the same Idempotency-Key', { timeout: 300_000 }, async () => {
    const src = await tarGz(join(ROOT, 'examples/node-hello'));
    const a = await api('POST', '/v1/builds', { token: acme, form: form(src, { name: 'idem' }), headers: { 'Idempotency-Key': 'k-123' } });
    const b = await api('POST', '/v1/builds', { token: acme, form: form(src, { name: 'idem' }), headers: { 'Idempotency-Key': 'k-123' } });
    expect(a.status).toBe(202);
    expect(b.status).toBe(200);
    expect(b.body.id).toBe(a.body.id);
    // AND the same key from another tenant is another build
    const c = await api('POST', '/v1/builds', { token: other, form: form(src, { name: 'idem' }), headers: { 'Idempotency-Key': 'k-123' } });
    expect(c.status).toBe(202);
    expect(c.body.id).not.toBe(a.body.id);
    await waitFor(acme, a.body.id, (x) => x.status === 'succeeded' || x.status === 'failed');
    await waitFor(other, c.body.id, (x) => x.status === 'succeeded' || x.status === 'failed');
  });

  it('cancels a build and retries it as a new build', { timeout: 300_000 }, async () => {
    const sub = await api('POST', '/v1/builds', {
      token: acme,
      form: form(await tarGz(join(ROOT, 'examples/node-hello')), { name: 'cancelme' }),
    });
    const cancelled = await api('POST', `/v1/builds/${sub.body.id}/cancel`, { token: acme });
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.status).toBe('cancelled');
    expect((await api('POST', `/v1/builds/${sub.body.id}/cancel`, { token: acme })).status).toBe(409);
    const retried = await api('POST', `/v1/builds/${sub.body.id}/retry`, { token: acme });
    expect(retried.status).toBe(202);
    expect(retried.body.retryOf).toBe(sub.body.id);
    const done = await waitFor(acme, retried.body.id, (x) => ['succeeded', 'failed'].includes(x.status));
    expect(done.status).toBe('succeeded');
  });

  it('reports a failing build with its step and the tool’s message', { timeout: 300_000 }, async () => {
    const dir = await mkdtemp(join(work, 'bad-'));
    await writeFile(
      join(dir, 'pyproject.toml'),
      '[project]\nname = "bad"\nversion = "1"\ndependencies = ["svcbuild-surely-no-such-package-zz"]\n',
    );
    await writeFile(join(dir, 'main.py'), '');
    const sub = await api('POST', '/v1/builds', { token: acme, form: form(await tarGz(dir)) });
    const done = await waitFor(acme, sub.body.id, (x) => ['succeeded', 'failed'].includes(x.status));
    expect(done.status).toBe('failed');
    expect(done.error.step).toBe('build');
    expect(done.error.code).toBe('build_failed');
    expect(done.error.message).toContain('svcbuild-surely-no-such-package-zz was not found in the package');
  });
});

describe('the API refuses bad submissions and stores nothing', () => {
  async function buildsOnDisk(): Promise<number> {
    return (await readdir(join(stateDir, 'builds'))).length;
  }

  it.each([
    ['no source part', () => form(undefined, { name: 'x' }), 'source', 'missing: attach the project'],
    ['a bad spec', () => form(new Blob(['x']), { name: 'x', port: 80, color: 'red' }), 'spec', ''],
    ['not an archive', () => form(new Blob([Buffer.from('\xff\xd8\xff\xe0 not a zip', 'latin1')]), {}), 'source', ''],
    ['a service name that breaks the rules', () => form(goodArchive, { name: 'Bad_Name' }), 'spec.name', 'is not a valid service name'],
  ])('refuses %s', async (_what, make, path, message) => {
    const before = await buildsOnDisk();
    const r = await api('POST', '/v1/builds', { token: acme, form: make() });
    expect(r.status).toBe(400);
    expect(r.body.error.issues.some((i: any) => i.path.startsWith(path) && i.message.includes(message))).toBe(true);
    expect(await buildsOnDisk()).toBe(before);
  });

  it('refuses an archive over the size limit', async () => {
    const r = await api('POST', '/v1/builds', { token: acme, form: form(new Blob([Buffer.alloc(3 * 1024 * 1024, 1)]), {}) });
    expect(r.status).toBe(400);
    expect(r.body.error.issues).toContainEqual({ path: 'source', message: 'the archive is larger than 2097152 bytes' });
  });

  it('refuses a zip-slip archive', async () => {
    // GIVEN a tar whose entry climbs out of the root (made with GNU tar's --transform)
    const dir = await mkdtemp(join(work, 'slip-'));
    await writeFile(join(dir, 'evil.txt'), 'x');
    const out = join(work, 'slip.tar.gz');
    await runOk('tar', ['-czf', out, '-C', dir, '--transform', 's,^,../../,', '-P', 'evil.txt']);
    const before = await buildsOnDisk();
    const r = await api('POST', '/v1/builds', { token: acme, form: form(new Blob([await readFile(out)]), {}) });
    expect(r.status).toBe(400);
    expect(JSON.stringify(r.body.error.issues)).toContain('..');
    expect(await buildsOnDisk()).toBe(before);
  });

  it('refuses a git URL with credentials or a non-loopback plain scheme', async () => {
    const a = await api('POST', '/v1/builds', { token: acme, json: { git: { url: 'https://user:pw@example.com/r.git' } } });
    expect(a.status).toBe(400);
    const b = await api('POST', '/v1/builds', { token: acme, json: { git: { url: 'http://example.com/r.git' } } });
    expect(b.status).toBe(400);
    expect(b.body.error.issues).toEqual([{ path: 'git.url', message: 'use https:// (http:// is allowed only for loopback hosts)' }]);
  });
});

describe('git sources', () => {
  it('builds a subdirectory of a git repository at a ref', { timeout: 300_000 }, async () => {
    // GIVEN a repository served by git daemon on loopback, the service in svc/
    const repos = await mkdtemp(join(work, 'git-'));
    const repo = join(repos, 'shop.git');
    const wt = join(repos, 'wt');
    await cp(join(ROOT, 'examples/node-hello'), join(wt, 'svc'), { recursive: true });
    const g = (args: string[], cwd: string) => runOk('git', ['-c', 'user.email=t@t', '-c', 'user.name=t', ...args], { cwd });
    await g(['init', '-q', '-b', 'release'], wt);
    await g(['add', '.'], wt);
    await g(['commit', '-qm', 'svc'], wt);
    await g(['clone', '-q', '--bare', wt, repo], repos);
    const port = await freePort();
    const daemon = spawn(
      'git',
      ['daemon', '--reuseaddr', `--base-path=${repos}`, '--export-all', `--port=${port}`, '--listen=127.0.0.1', repos],
      { stdio: 'ignore' },
    );
    try {
      await new Promise((r) => setTimeout(r, 500));
      // WHEN it is submitted as a git source
      const sub = await api('POST', '/v1/builds', {
        token: acme,
        json: { git: { url: `git://127.0.0.1:${port}/shop.git`, ref: 'release', subdirectory: 'svc' }, spec: { name: 'shop' } },
      });
      expect(sub.status).toBe(202);
      // THEN it builds
      const done = await waitFor(acme, sub.body.id, (x) => ['succeeded', 'failed'].includes(x.status));
      expect(done.status, JSON.stringify(done.error)).toBe('succeeded');
      expect(done.source).toEqual({ type: 'git', url: `git://127.0.0.1:${port}/shop.git`, ref: 'release', subdirectory: 'svc' });
    } finally {
      daemon.kill();
    }
  });
});

describe('restart mid-build', () => {
  it('finishes a build after the server is killed while building it', { timeout: 900_000 }, async () => {
    // GIVEN a server process (the real CLI) and a build whose dependency layer is not cached
    const port = await freePort();
    const env = { ...process.env, SVCBUILD_REGISTRY: registry, SVCBUILD_STATE_DIR: stateDir };
    const start = () => spawn(process.execPath, [join(ROOT, 'bin/svcbuild.js'), 'serve', '--port', String(port)], { env, stdio: 'ignore' });
    let proc = start();
    const url = `http://127.0.0.1:${port}`;
    const up = async () => {
      for (let i = 0; i < 100; i++) {
        try {
          if ((await fetch(`${url}/readyz`)).ok) return;
        } catch {
          // starting
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error('server did not start');
    };
    try {
      await up();
      const dir = await mkdtemp(join(work, 'restart-'));
      await cp(join(ROOT, 'examples/python-hello'), dir, { recursive: true });
      await appendFile(join(dir, 'pyproject.toml'), `# ${Date.now()}\n`);
      const f = form(await tarGz(dir), { name: 'restart' });
      const sub: any = await (
        await fetch(`${url}/v1/builds`, { method: 'POST', body: f, headers: { Authorization: `Bearer ${acme}` } })
      ).json();
      const get = async (): Promise<any> =>
        (await fetch(`${url}/v1/builds/${sub.id}`, { headers: { Authorization: `Bearer ${acme}` } })).json();
      // Kill while the dependency install runs: the build is then surely unfinished.
      const logOf = async () => (await fetch(`${url}/v1/builds/${sub.id}/logs`, { headers: { Authorization: `Bearer ${acme}` } })).text();
      while (!(await logOf()).includes(': RUN uv pip install')) {
        expect((await get()).status).not.toBe('succeeded');
        await new Promise((r) => setTimeout(r, 50));
      }
      // WHEN the server is killed mid-build and started again
      proc.kill('SIGKILL');
      await new Promise((r) => proc.once('exit', r));
      proc = start();
      await up();
      // THEN the build runs again and succeeds, its record kept
      let b = await get();
      while (!['succeeded', 'failed', 'cancelled'].includes(b.status)) {
        await new Promise((r) => setTimeout(r, 250));
        b = await get();
      }
      expect(b.status, JSON.stringify(b.error)).toBe('succeeded');
      expect(b.attempts, JSON.stringify(b)).toBe(2);
      const logText = await (await fetch(`${url}/v1/builds/${sub.id}/logs`, { headers: { Authorization: `Bearer ${acme}` } })).text();
      expect(logText).toContain('svcbuild: the server restarted during this build; starting it again');
    } finally {
      proc.kill('SIGKILL');
    }
  });
});
