/**
 * The API under hostile input, over real HTTP on 127.0.0.1 with the local executor:
 *
 * - a bounded schemathesis run (PyPI, installed by scripts/install-schemathesis.sh) generated
 *   from /openapi.json: no 5xx, and every response matches the document;
 * - a fixed list of garbage requests (huge headers, invalid JSON, wrong content types, path
 *   traversal and very long ids): every one a 4xx with the one error body shape.
 *
 * Everything stays on loopback: the server listens on 127.0.0.1, schemathesis targets only it,
 * and git clones the fuzzer might queue go through a proxy on 127.0.0.1 that does not exist.
 * Environment: SVCBUILD_SCHEMATHESIS (an installed executable; else the script runs),
 * SVCBUILD_FUZZ_SECONDS (time budget, default 60), SVCBUILD_FUZZ_SEED.
 */
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { TokenStore } from '../../src/api/tokens.js';
import { TERMINAL, type BuildRecord } from '../../src/domain/build.js';
import { startServer, type Running } from '../../src/server.js';
import { runOk } from '../../src/util/exec.js';
import { ROOT } from '../helpers/cli.js';
import { openApiDocument } from '../../src/api/openapi.js';
import { expectDocumented, templateOf } from '../helpers/openapi.js';

const registry = inject('registryHost');
const FUZZ_SECONDS = Number(process.env.SVCBUILD_FUZZ_SECONDS ?? 60);
const PROXY_VARS = ['http_proxy', 'https_proxy', 'all_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY', 'no_proxy', 'NO_PROXY'];

let stateDir: string;
let work: string;
let server: Running;
let base: string;
let acme: string;
const logs: Array<Record<string, unknown>> = [];
const savedEnv: Record<string, string | undefined> = {};

beforeAll(async () => {
  // Git clones run by the executor inherit this process's environment: send any https/http
  // clone to a dead proxy on loopback so a fuzzed git source never leaves the machine.
  for (const k of PROXY_VARS) savedEnv[k] = process.env[k];
  for (const k of ['http_proxy', 'https_proxy', 'all_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY'])
    process.env[k] = 'http://127.0.0.1:9';
  delete process.env.no_proxy;
  delete process.env.NO_PROXY;
  stateDir = await mkdtemp(join(tmpdir(), 'svcbuild-fuzz-state-'));
  work = await mkdtemp(join(tmpdir(), 'svcbuild-fuzz-work-'));
  const config = await loadConfig({ cwd: ROOT, home: ROOT, env: { SVCBUILD_REGISTRY: registry, SVCBUILD_STATE_DIR: stateDir } });
  server = await startServer(config, ROOT, {
    port: 0,
    host: '127.0.0.1',
    log: (e) => logs.push(e),
    archiveLimits: { maxArchiveBytes: 256 * 1024, maxFiles: 50, maxUnpackedBytes: 1024 * 1024, maxPathLength: 256 },
  });
  base = `http://127.0.0.1:${server.port}`;
  acme = await new TokenStore(join(stateDir, 'tokens.json')).create('acme');
});

afterAll(async () => {
  await server?.close();
  for (const k of PROXY_VARS) {
    if (savedEnv[k] === undefined) delete process.env[k];
    else process.env[k] = savedEnv[k];
  }
  if (stateDir) await rm(stateDir, { recursive: true, force: true });
  if (work) await rm(work, { recursive: true, force: true });
});

function serverErrors(): Array<Record<string, unknown>> {
  return logs.filter((l) => (typeof l.status === 'number' && l.status >= 500) || l.msg === 'unhandled error');
}

/** The schemathesis executable: $SVCBUILD_SCHEMATHESIS, else installed (idempotently) by the script. */
async function schemathesis(): Promise<string> {
  if (process.env.SVCBUILD_SCHEMATHESIS) return process.env.SVCBUILD_SCHEMATHESIS;
  const out = await runOk('bash', [join(ROOT, 'scripts/install-schemathesis.sh')], { timeoutMs: 300_000 });
  const exe = out.stdout.trim().split('\n').pop()!;
  expect(exe, `install-schemathesis.sh printed no path: ${out.stdout}`).toMatch(/schemathesis$/);
  return exe;
}

function runChild(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  cwd: string,
  limitMs: number,
): Promise<{ code: number | null; output: string; killed: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let killed = false;
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const timer = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, limitMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output, killed });
    });
  });
}

describe('schemathesis from the OpenAPI document', () => {
  it('finds no server error and no response outside the document', { timeout: (FUZZ_SECONDS + 420) * 1000 }, async () => {
    const exe = await schemathesis();
    // Only loopback: strip the dead proxy above (and any real one) for the fuzzer itself.
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      NO_PROXY: '127.0.0.1,localhost',
      no_proxy: '127.0.0.1,localhost',
      PYTHONUNBUFFERED: '1',
    };
    for (const k of ['http_proxy', 'https_proxy', 'all_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY']) delete env[k];
    const args = [
      'run',
      `${base}/openapi.json`,
      '--header',
      `Authorization: Bearer ${acme}`,
      '--checks',
      'not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance',
      // No links in the document, so no stateful phase.
      '--phases',
      'examples,coverage,fuzzing',
      '--max-examples',
      '30',
      '--max-time',
      String(FUZZ_SECONDS),
      '--request-timeout',
      '20',
      '--generation-database',
      'none',
      '--no-color',
      ...(process.env.SVCBUILD_FUZZ_SEED ? ['--seed', process.env.SVCBUILD_FUZZ_SEED] : []),
    ];
    const res = await runChild(exe, args, env, work, (FUZZ_SECONDS + 180) * 1000);
    const report = `schemathesis ${args.map((a) => (a.startsWith('Authorization') ? 'Authorization: Bearer <token>' : a)).join(' ')}\nexit ${res.code}${res.killed ? ' (killed: over its time bound)' : ''}\n${res.output}`;
    if (res.code !== 0) console.log(report);
    else
      console.log(
        res.output
          .split('\n')
          .filter((l) => /generated|passed|Seed:/.test(l))
          .join('\n'),
      );
    expect(res.killed, report).toBe(false);
    expect(res.code, report).toBe(0);
    // The server's own view agrees: no 5xx, no unhandled error.
    expect(serverErrors(), report).toEqual([]);
  });

  it('leaves no build hanging: every build the fuzzer queued ends, and the server still answers', { timeout: 180_000 }, async () => {
    const deadline = Date.now() + 150_000;
    let open: BuildRecord[] = [];
    for (;;) {
      const all = await server.executor.list('acme', { limit: 100_000 });
      open = all.filter((b) => !TERMINAL.has(b.status));
      if (!open.length || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(open.map((b) => `${b.id} ${b.status} ${JSON.stringify(b.source)}`)).toEqual([]);
    const r = await fetch(`${base}/readyz`);
    expect(r.status).toBe(200);
  });
});

interface Raw {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** One request as written (no URL normalisation, any header bytes), on a fresh connection. */
function raw(method: string, path: string, headers: Record<string, string> = {}, body?: string | Buffer): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: server.port, method, path, headers: { Connection: 'close', ...headers }, insecureHTTPParser: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.setTimeout(15_000, () => req.destroy(new Error(`${method} ${path}: no answer in 15 s`)));
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** The one error body shape, with the request id of the response header. */
function expectErrorShape(what: string, r: Raw): { code: string; message: string; issues?: Array<{ path: string; message: string }> } {
  expect(String(r.headers['content-type']), what).toMatch(/^application\/json/);
  const body = JSON.parse(r.text) as { error: Record<string, unknown> };
  expect(Object.keys(body), what).toEqual(['error']);
  const e = body.error;
  expect(typeof e.code, what).toBe('string');
  expect(typeof e.message, what).toBe('string');
  expect(e.requestId, what).toBe(r.headers['x-request-id']);
  for (const k of Object.keys(e)) expect(['code', 'message', 'issues', 'requestId'], `${what}: key ${k}`).toContain(k);
  if (e.issues !== undefined) {
    expect(Array.isArray(e.issues), what).toBe(true);
    for (const i of e.issues as Array<Record<string, unknown>>) {
      expect(Object.keys(i).sort(), what).toEqual(['message', 'path']);
      expect(typeof i.path, what).toBe('string');
      expect(typeof i.message, what).toBe('string');
    }
  }
  return e as ReturnType<typeof expectErrorShape>;
}

describe('no 5xx on garbage', () => {
  const auth = () => ({ Authorization: `Bearer ${acme}` });
  const long = (n: number, c = 'a') => c.repeat(n);
  const multipart = { 'Content-Type': 'multipart/form-data; boundary=zz' };

  type Case = [
    what: string,
    method: string,
    path: string,
    headers: () => Record<string, string>,
    body: string | Buffer | undefined,
    status: number,
  ];
  const cases: Case[] = [
    // auth
    ['no token', 'GET', '/v1/builds', () => ({}), undefined, 401],
    ['a huge bearer token', 'GET', '/v1/builds', () => ({ Authorization: `Bearer ${long(8000)}` }), undefined, 401],
    ['a huge request id and no token', 'GET', '/v1/builds', () => ({ 'X-Request-Id': long(8000) }), undefined, 401],
    ['basic auth', 'GET', '/v1/builds', () => ({ Authorization: 'Basic YWRtaW46YWRtaW4=' }), undefined, 401],
    [
      'a token with a newline-free but binary tail',
      'GET',
      '/v1/builds',
      () => ({ Authorization: `Bearer ${acme}\u00ff\u00fe` }),
      undefined,
      401,
    ],
    // bodies and content types
    ['invalid JSON', 'POST', '/v1/builds', () => ({ ...auth(), 'Content-Type': 'application/json' }), '{"git": {"url": ', 400],
    [
      'JSON that is not an object',
      'POST',
      '/v1/builds',
      () => ({ ...auth(), 'Content-Type': 'application/json' }),
      '"https://example.com/r.git"',
      400,
    ],
    [
      'deeply nested JSON',
      'POST',
      '/v1/builds',
      () => ({ ...auth(), 'Content-Type': 'application/json' }),
      `${'['.repeat(30_000)}${']'.repeat(30_000)}`,
      400,
    ],
    [
      'a JSON body over 64 KiB',
      'POST',
      '/v1/builds',
      () => ({ ...auth(), 'Content-Type': 'application/json' }),
      JSON.stringify({ git: { url: `https://example.com/${long(100_000)}` } }),
      400,
    ],
    [
      'a __proto__ key',
      'POST',
      '/v1/builds',
      () => ({ ...auth(), 'Content-Type': 'application/json' }),
      '{"__proto__": {"git": {"url": "https://example.com/r.git"}}}',
      400,
    ],
    [
      'a git URL with an option as ref',
      'POST',
      '/v1/builds',
      () => ({ ...auth(), 'Content-Type': 'application/json' }),
      '{"git": {"url": "https://example.com/r.git", "ref": "--upload-pack=touch /tmp/x"}}',
      400,
    ],
    [
      'a git subdirectory climbing out',
      'POST',
      '/v1/builds',
      () => ({ ...auth(), 'Content-Type': 'application/json' }),
      '{"git": {"url": "https://example.com/r.git", "subdirectory": "../../etc"}}',
      400,
    ],
    ['text/plain', 'POST', '/v1/builds', () => ({ ...auth(), 'Content-Type': 'text/plain' }), 'hello', 400],
    ['no content type', 'POST', '/v1/builds', () => auth(), 'hello', 400],
    ['application/xml', 'POST', '/v1/builds', () => ({ ...auth(), 'Content-Type': 'application/xml' }), '<build/>', 400],
    ['multipart without a boundary', 'POST', '/v1/builds', () => ({ ...auth(), 'Content-Type': 'multipart/form-data' }), 'x', 400],
    [
      'truncated multipart',
      'POST',
      '/v1/builds',
      () => ({ ...auth(), ...multipart }),
      '--zz\r\nContent-Disposition: form-data; name="source"; filename="a.zip"\r\n\r\nPK\x03\x04 and then nothing',
      400,
    ],
    [
      'two source files',
      'POST',
      '/v1/builds',
      () => ({ ...auth(), ...multipart }),
      '--zz\r\nContent-Disposition: form-data; name="source"; filename="a"\r\n\r\nx\r\n--zz\r\nContent-Disposition: form-data; name="source"; filename="b"\r\n\r\ny\r\n--zz--\r\n',
      400,
    ],
    [
      'an unnamed part',
      'POST',
      '/v1/builds',
      () => ({ ...auth(), ...multipart }),
      '--zz\r\nContent-Disposition: form-data; name=""\r\n\r\nx\r\n--zz--\r\n',
      400,
    ],
    [
      'random bytes as the archive',
      'POST',
      '/v1/builds',
      () => ({ ...auth(), ...multipart }),
      Buffer.concat([
        Buffer.from('--zz\r\nContent-Disposition: form-data; name="source"; filename="a.tar.gz"\r\n\r\n'),
        Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256)),
        Buffer.from('\r\n--zz--\r\n'),
      ]),
      400,
    ],
    ['a PATCH that is not JSON', 'PATCH', '/v1/services/nope', () => ({ ...auth(), 'Content-Type': 'text/plain' }), 'replicas=3', 400],
    [
      'a PATCH with invalid JSON',
      'PATCH',
      '/v1/services/nope',
      () => ({ ...auth(), 'Content-Type': 'application/json' }),
      '{replicas: 3}',
      400,
    ],
    [
      'an Idempotency-Key of 200 characters',
      'POST',
      '/v1/builds',
      () => ({ ...auth(), 'Content-Type': 'application/json', 'Idempotency-Key': long(200) }),
      '{}',
      400,
    ],
    [
      'an Idempotency-Key with non-ASCII bytes',
      'POST',
      '/v1/builds',
      () => ({ ...auth(), 'Content-Type': 'application/json', 'Idempotency-Key': 'k\u00e9y' }),
      '{}',
      400,
    ],
    // ids and names: traversal, length, encoding
    ['a traversal build id', 'GET', '/v1/builds/..%2F..%2Fetc', auth, undefined, 404],
    ['a traversal build id (logs)', 'GET', '/v1/builds/..%2F..%2Fetc%2Fpasswd/logs', auth, undefined, 404],
    ['a traversal build id (cancel)', 'POST', '/v1/builds/..%2F..%2Ftokens/cancel', auth, undefined, 404],
    ['a traversal build id (retry)', 'POST', '/v1/builds/..%2Fbuilds/retry', auth, undefined, 404],
    ['a dot-dot path as written', 'GET', '/v1/builds/../../../etc/passwd', auth, undefined, 404],
    ['a traversal service name to the token file', 'GET', '/v1/services/..%2F..%2Ftokens', auth, undefined, 404],
    ['a traversal service name to another tenant', 'GET', '/v1/services/..%2Fother%2Fhello', auth, undefined, 404],
    ['a traversal service delete', 'DELETE', '/v1/services/..%2Fother%2Fhello', auth, undefined, 404],
    [
      'a traversal service patch',
      'PATCH',
      '/v1/services/..%2Fother%2Fhello',
      () => ({ ...auth(), 'Content-Type': 'application/json' }),
      '{"replicas": 3}',
      404,
    ],
    ['a very long build id', 'GET', `/v1/builds/${long(8000)}`, auth, undefined, 404],
    ['a very long service name', 'GET', `/v1/services/${long(8000)}`, auth, undefined, 404],
    ['a NUL in an id', 'GET', '/v1/builds/abc%00def', auth, undefined, 404],
    ['bad percent-encoding in an id', 'GET', '/v1/builds/%E0%A4%A', auth, undefined, 400],
    ['bad percent-encoding in a service name', 'DELETE', '/v1/services/%ZZ', auth, undefined, 400],
    // queries and methods
    ['a limit of 1e400', 'GET', '/v1/builds?limit=1e400', auth, undefined, 400],
    ['a limit of 0', 'GET', '/v1/builds?limit=0', auth, undefined, 400],
    ['a repeated status', 'GET', '/v1/builds?status=queued&status=failed', auth, undefined, 400],
    ['a bracketed query key', 'GET', '/v1/builds?limit[$gt]=1', auth, undefined, 400],
    ['an unknown query key', 'GET', '/v1/builds?tenant=other', auth, undefined, 400],
    ['a method the API has not', 'PUT', '/v1/builds', auth, undefined, 404],
    ['a method on an id it has not', 'DELETE', '/v1/builds/20260101000000-abcdef', auth, undefined, 404],
    ['an unknown route', 'GET', '/v2/builds', auth, undefined, 404],
  ];

  beforeAll(async () => {
    // Another tenant's service and the token file are real files next to acme's services.
    await mkdir(join(stateDir, 'services', 'other'), { recursive: true });
    await writeFile(
      join(stateDir, 'services', 'other', 'hello.json'),
      JSON.stringify({ tenant: 'other', name: 'hello', secret: 'other-tenant-data' }),
    );
  });

  it.each(cases)('answers %s with a 4xx and the error shape', async (what, method, path, headers, body, status) => {
    const before = (await readdir(join(stateDir, 'builds'))).length;
    const r = await raw(method, path, headers(), body);
    expect(r.status, `${what}: ${r.text.slice(0, 500)}`).toBe(status);
    const e = expectErrorShape(what, r);
    expect(r.text, what).not.toContain('other-tenant-data');
    expect(r.text, what).not.toMatch(/"hash"/);
    const t = templateOf(path);
    const documented =
      t && !path.includes('/../') && (openApiDocument.paths as Record<string, Record<string, unknown>>)[t]![method.toLowerCase()];
    if (documented) expectDocumented(method, path, r.status, String(r.headers['content-type']), JSON.parse(r.text));
    if (status === 400) expect(e.code).toBe('invalid_input');
    // Nothing stored for a refused request.
    expect((await readdir(join(stateDir, 'builds'))).length, what).toBe(before);
  });

  it('refuses headers over the limit at the HTTP parser (431) and keeps serving', async () => {
    const r = await raw('GET', '/v1/builds', { ...auth(), 'X-Garbage': long(64 * 1024) });
    expect(r.status).toBe(431);
    const ok = await raw('GET', '/v1/builds', auth());
    expect(ok.status).toBe(200);
  });

  it('kept the other tenant’s service and the token file intact, and logged no 5xx', async () => {
    expect(JSON.parse(await readFile(join(stateDir, 'services', 'other', 'hello.json'), 'utf8')).secret).toBe('other-tenant-data');
    expect(JSON.parse(await readFile(join(stateDir, 'tokens.json'), 'utf8')).tokens).toHaveLength(1);
    expect(serverErrors()).toEqual([]);
  });
});
