/** `svcbuild submit <dir> --server URL [--watch]`: a build through the HTTP API. */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { CliContext } from '../context.js';
import { runOk } from '../../util/exec.js';
import { IGNORED_NAMES } from '../../providers/project.js';
import { InputError, UpstreamError, AuthError, NotFoundError } from '../../errors.js';

const HELP = `usage: svcbuild submit <dir> --server URL [options]

Packs <dir> as tar.gz (without caches such as node_modules, .venv, .git), submits it to a
svcbuild server, and prints the build id. With --watch, streams the build's steps and logs
and exits non-zero when the build fails.

options:
  --server URL       the svcbuild API (default: $SVCBUILD_SERVER)
  --token TOKEN      bearer token (default: $SVCBUILD_TOKEN)
  --name NAME, --kind KIND, --base NAME, --port N, --route /path
  --idempotency-key KEY   resubmitting with the same key returns the same build
  --watch            follow the build to its end
  --json             print the final build as JSON
`;

export async function main(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      server: { type: 'string', default: process.env.SVCBUILD_SERVER },
      token: { type: 'string', default: process.env.SVCBUILD_TOKEN },
      name: { type: 'string' },
      kind: { type: 'string' },
      base: { type: 'string' },
      port: { type: 'string' },
      route: { type: 'string' },
      'idempotency-key': { type: 'string' },
      watch: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    ctx.stdout.write(HELP);
    return 0;
  }
  const issues = [];
  if (positionals.length !== 1) issues.push({ path: 'dir', message: 'give exactly one project directory' });
  if (!values.server) issues.push({ path: '--server', message: 'give the API URL (or set SVCBUILD_SERVER)' });
  if (!values.token)
    issues.push({ path: '--token', message: 'give a token (or set SVCBUILD_TOKEN); create one with `svcbuild token create --tenant T`' });
  if (issues.length) throw new InputError('cannot submit', issues);
  const server = values.server!.replace(/\/+$/, '');
  const headers = { Authorization: `Bearer ${values.token}` };
  const spec: Record<string, unknown> = {};
  for (const k of ['name', 'kind', 'base', 'route'] as const) if (values[k]) spec[k] = values[k];
  if (values.port) spec.port = Number(values.port);

  const work = await mkdtemp(join(tmpdir(), 'svcbuild-submit-'));
  let build: any;
  try {
    const archive = join(work, 'source.tar.gz');
    const excludes = [...IGNORED_NAMES].map((n) => `--exclude=${n}`);
    await runOk('tar', ['-czf', archive, ...excludes, '-C', resolve(positionals[0]!), '.']);
    const form = new FormData();
    form.set('spec', JSON.stringify(spec));
    form.set('source', new Blob([await readFile(archive)], { type: 'application/gzip' }), 'source.tar.gz');
    const res = await call(`${server}/v1/builds`, {
      method: 'POST',
      body: form,
      headers: { ...headers, ...(values['idempotency-key'] ? { 'Idempotency-Key': values['idempotency-key'] } : {}) },
    });
    build = await res.json();
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  ctx.stderr.write(`build ${build.id} ${build.status}: ${server}${build.links.self}\n`);
  if (!values.watch) {
    if (values.json) ctx.stdout.write(JSON.stringify(build, null, 2) + '\n');
    else ctx.stdout.write(`${build.id}\n`);
    return 0;
  }
  // Follow the logs as server-sent events until the build ends.
  const res = await call(`${server}/v1/builds/${build.id}/logs?follow=true`, { headers: { ...headers, Accept: 'text/event-stream' } });
  const decoder = new TextDecoder();
  let buf = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(chunk, { stream: true });
    let i: number;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const event = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const data = event
        .split('\n')
        .filter((l) => l.startsWith('data: '))
        .map((l) => l.slice(6))
        .join('\n');
      if (event.startsWith('event: end')) continue;
      ctx.stderr.write(`${data}\n`);
    }
  }
  // The log stream ends with the last step's log; the build ends after its exit handler (the
  // in-cluster final report and cleanup), so wait for a final status.
  let final: any = await (await call(`${server}/v1/builds/${build.id}`, { headers })).json();
  while (!['succeeded', 'failed', 'cancelled'].includes(final.status)) {
    await new Promise((r) => setTimeout(r, 1000));
    final = await (await call(`${server}/v1/builds/${build.id}`, { headers })).json();
  }
  if (values.json) ctx.stdout.write(JSON.stringify(final, null, 2) + '\n');
  else {
    for (const s of final.steps)
      ctx.stdout.write(
        `${s.status === 'succeeded' ? '✔' : s.status === 'failed' ? '✘' : '-'} ${s.name}${s.seconds !== null ? ` (${s.seconds}s)` : ''}\n`,
      );
    ctx.stdout.write(`build ${final.id}: ${final.status}\n`);
    if (final.image) ctx.stdout.write(`image    ${final.image}\n`);
    if (final.chart) ctx.stdout.write(`chart    ${final.chart.ref} --version ${final.chart.version}\n`);
    if (final.error) ctx.stdout.write(`error    ${final.error.step ? `[${final.error.step}] ` : ''}${final.error.message}\n`);
  }
  return final.status === 'succeeded' ? 0 : 7;
}

async function call(url: string, init: RequestInit): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(url, init);
  } catch (e) {
    throw new UpstreamError(`cannot reach ${url}: ${(e as Error).cause ?? (e as Error).message}`);
  }
  if (res.ok) return res;
  let body: any;
  try {
    body = await res.json();
  } catch {
    body = {};
  }
  const msg = body?.error?.message ?? `HTTP ${res.status}`;
  const issues = body?.error?.issues ?? [];
  if (res.status === 400 || res.status === 413) throw new InputError(msg, issues);
  if (res.status === 401) throw new AuthError(msg);
  if (res.status === 404) throw new NotFoundError(msg);
  throw new UpstreamError(`${msg} (HTTP ${res.status}, request ${body?.error?.requestId ?? '?'})`, res.status);
}
