/**
 * The local executor behind the API: builds queue on one machine and run one at a time with
 * the same LocalBuilder the CLI uses. Its state is files under the state directory, written
 * atomically, so a server killed mid-build resumes the build when it starts again.
 *
 *   builds/<id>/record.json   the BuildRecord
 *   builds/<id>/build.log     step and tool output
 *   builds/<id>/source/       the checked project (archive) or clone (git)
 *   services/<tenant>/<name>.json
 *   idempotency/<sha256(tenant, key)>   the build id
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { appendFile, mkdir, readFile, readdir, rename, rm, stat, writeFile, cp } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Config } from '../../config/schema.js';
import { isLoopbackHost } from '../../config/schema.js';
import { TERMINAL, type BuildRecord } from '../../domain/build.js';
import { qualifiedName } from '../../domain/names.js';
import type { Reporter } from '../../domain/progress.js';
import { CancelledError, ConflictError, InputError, NotFoundError, SvcbuildError } from '../../errors.js';
import { runOk } from '../../util/exec.js';
import type { BuildFilter, Executor, ServiceConfig, ServiceRecord, Submission } from '../executor.js';
import { newBuildId, type BuildResult, type LocalBuilder } from './build.js';

export const DEFAULT_SERVICE_CONFIG: Omit<ServiceConfig, 'port' | 'route'> = { env: {}, replicas: 1, memory: '256Mi', cpu: '250m' };

export interface LocalExecutorDeps {
  config: Config;
  /** Makes the builder for one build, reporting to the given reporter. */
  builder: (reporter: Reporter) => LocalBuilder;
  /** Republishes a service's chart after a config change (no rebuild). */
  republish?: (svc: ServiceRecord) => Promise<ServiceRecord['chart']>;
}

async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(value, null, 2));
  await rename(tmp, path);
}

export class LocalExecutor implements Executor {
  readonly name = 'local' as const;
  private readonly records = new Map<string, BuildRecord>();
  private readonly queue: string[] = [];
  private readonly aborts = new Map<string, AbortController>();
  private readonly waiters = new Map<string, Set<() => void>>();
  private running: Promise<void> | undefined;
  private stopped = false;
  private readonly dir: string;

  constructor(private readonly deps: LocalExecutorDeps) {
    this.dir = resolve(deps.config.stateDir);
  }

  private buildDir(id: string): string {
    return join(this.dir, 'builds', id);
  }

  /** Loads every record; builds that were queued or running when the server stopped run again. */
  async start(): Promise<void> {
    await mkdir(join(this.dir, 'builds'), { recursive: true });
    const ids = (await readdir(join(this.dir, 'builds'))).sort();
    const resume: string[] = [];
    for (const id of ids) {
      let rec: BuildRecord;
      try {
        rec = JSON.parse(await readFile(join(this.buildDir(id), 'record.json'), 'utf8')) as BuildRecord;
      } catch {
        continue; // a CLI build (build.json only) or a half-written directory
      }
      this.records.set(id, rec);
      if (rec.status === 'queued' || rec.status === 'running') resume.push(id);
    }
    for (const id of resume) {
      const rec = this.records.get(id)!;
      if (rec.status === 'running') await this.log(id, `svcbuild: the server restarted during this build; starting it again`);
      rec.status = 'queued';
      await this.save(rec);
      this.queue.push(id);
    }
    this.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const a of this.aborts.values()) a.abort();
    await this.running;
  }

  async ready(): Promise<boolean> {
    return !this.stopped;
  }

  private async save(rec: BuildRecord): Promise<void> {
    this.records.set(rec.id, rec);
    await mkdir(this.buildDir(rec.id), { recursive: true });
    await writeJsonAtomic(join(this.buildDir(rec.id), 'record.json'), rec);
    const ws = this.waiters.get(rec.id);
    if (ws) for (const w of ws) w();
  }

  private async log(id: string, line: string): Promise<void> {
    await appendFile(join(this.buildDir(id), 'build.log'), line.endsWith('\n') ? line : `${line}\n`);
    const ws = this.waiters.get(id);
    if (ws) for (const w of ws) w();
  }

  private idempotencyPath(tenant: string, key: string): string {
    return join(this.dir, 'idempotency', createHash('sha256').update(`${tenant}\0${key}`).digest('hex'));
  }

  async submit(s: Submission): Promise<{ record: BuildRecord; created: boolean }> {
    if (s.idempotencyKey) {
      try {
        const id = (await readFile(this.idempotencyPath(s.tenant, s.idempotencyKey), 'utf8')).trim();
        const existing = this.records.get(id);
        if (existing) {
          if (s.source.type === 'archive') await rm(s.source.dir, { recursive: true, force: true });
          return { record: existing, created: false };
        }
      } catch {
        // no build for this key yet
      }
    }
    if (s.source.type === 'git') checkGitUrl(s.source.git.url);
    const id = newBuildId();
    const rec: BuildRecord = {
      id,
      tenant: s.tenant,
      status: 'queued',
      spec: s.spec,
      source:
        s.source.type === 'archive'
          ? s.source.info
          : { type: 'git', url: s.source.git.url, ref: s.source.git.ref, subdirectory: s.source.git.subdirectory },
      createdAt: new Date().toISOString(),
      name: s.spec.name,
      steps: [],
      attempts: 0,
    };
    await mkdir(this.buildDir(id), { recursive: true });
    if (s.source.type === 'archive') await moveDir(s.source.dir, join(this.buildDir(id), 'source'));
    await this.save(rec);
    if (s.idempotencyKey) {
      await mkdir(join(this.dir, 'idempotency'), { recursive: true });
      await writeFile(this.idempotencyPath(s.tenant, s.idempotencyKey), id);
    }
    this.queue.push(id);
    this.kick();
    return { record: rec, created: true };
  }

  private kick(): void {
    if (this.running || this.stopped) return;
    this.running = (async () => {
      while (!this.stopped && this.queue.length) {
        const id = this.queue.shift()!;
        const rec = this.records.get(id);
        if (!rec || rec.status !== 'queued') continue;
        await this.runBuild(rec);
      }
    })().finally(() => {
      this.running = undefined;
      if (!this.stopped && this.queue.length) this.kick();
    });
  }

  private async runBuild(rec: BuildRecord): Promise<void> {
    const abort = new AbortController();
    this.aborts.set(rec.id, abort);
    rec.status = 'running';
    rec.startedAt = new Date().toISOString();
    rec.attempts += 1;
    rec.steps = [];
    delete rec.error;
    await this.save(rec);
    let chain = Promise.resolve();
    const enqueue = (fn: () => Promise<void>) => (chain = chain.then(fn, fn));
    const reporter: Reporter = {
      step: (s) => {
        void enqueue(async () => {
          const i = rec.steps.findIndex((x) => x.name === s.name);
          if (i >= 0) rec.steps[i] = s;
          else rec.steps.push(s);
          await this.log(
            rec.id,
            `[${s.name}] ${s.status}${s.seconds !== undefined ? ` (${s.seconds}s)` : ''}${s.message ? `: ${s.message}` : ''}`,
          );
          await this.save(rec);
        });
      },
      log: (step, line) => {
        void enqueue(() => this.log(rec.id, `[${step}] ${line}`));
      },
    };
    try {
      const projectDir = await this.prepareSource(rec, reporter, abort.signal);
      const result: BuildResult = await this.deps.builder(reporter).build({
        id: rec.id,
        projectDir,
        name: rec.spec.name,
        kind: rec.spec.kind,
        base: rec.spec.base,
        tenant: rec.tenant,
        overrides: { port: rec.spec.port, route: rec.spec.route, env: rec.spec.env },
        signal: abort.signal,
      });
      await chain;
      rec.service = result.service;
      rec.name = result.name;
      rec.kind = result.kind;
      rec.image = result.image;
      rec.base = result.base;
      if (result.overlay) rec.overlay = { digest: result.overlay.digest, bytes: result.overlay.bytes, ref: result.overlay.ref };
      if (result.chart) rec.chart = result.chart;
      if (result.scan) rec.scan = result.scan;
      rec.status = 'succeeded';
      await this.recordService(rec, result);
    } catch (err) {
      await chain;
      if (abort.signal.aborted || err instanceof CancelledError) {
        rec.status = this.stopped ? 'queued' : 'cancelled';
        if (rec.status === 'cancelled') rec.error = { code: 'cancelled', message: 'the build was cancelled' };
      } else {
        rec.status = 'failed';
        const partial = (err as { result?: BuildResult }).result;
        if (partial) {
          rec.image = partial.image;
          rec.base = partial.base;
          if (partial.scan) rec.scan = partial.scan;
        }
        const failed = rec.steps.find((s) => s.status === 'failed');
        rec.error =
          err instanceof SvcbuildError
            ? { step: failed?.name ?? (err as { step?: string }).step, code: err.code, message: err.message }
            : { step: failed?.name, code: 'internal', message: err instanceof Error ? err.message : String(err) };
        await this.log(rec.id, `svcbuild: build failed${rec.error.step ? ` at ${rec.error.step}` : ''}: ${rec.error.message}`);
      }
    } finally {
      this.aborts.delete(rec.id);
      for (const s of rec.steps) if (s.status === 'running') s.status = rec.status === 'cancelled' ? 'skipped' : 'failed';
      if (TERMINAL.has(rec.status)) rec.finishedAt = new Date().toISOString();
      await this.save(rec);
    }
  }

  /** The project directory of a build: the uploaded source, or a shallow clone of the git ref. */
  private async prepareSource(rec: BuildRecord, reporter: Reporter, signal: AbortSignal): Promise<string> {
    const src = rec.source;
    if (src.type === 'archive') return join(this.buildDir(rec.id), 'source');
    const dest = join(this.buildDir(rec.id), 'source');
    await rm(dest, { recursive: true, force: true });
    reporter.log('source', `git clone --depth 1 --branch ${src.ref} ${src.url}`);
    try {
      await runOk('git', ['clone', '--quiet', '--depth', '1', '--branch', src.ref, '--', src.url, dest], {
        signal,
        env: {
          ...process.env,
          GIT_TERMINAL_PROMPT: '0',
          GIT_CONFIG_NOSYSTEM: '1',
          GIT_PROTOCOL_FROM_USER: '0',
          GIT_ALLOW_PROTOCOL: 'https:http:git',
        },
        timeoutMs: 300_000,
      });
    } catch (e) {
      throw new InputError(`cannot clone ${src.url} at ${src.ref}`, [
        { path: 'git.url', message: (e as Error).message.split('\n').slice(1).join(' ').trim() || 'clone failed' },
      ]);
    }
    const dir = join(dest, src.subdirectory);
    if (!resolve(dir).startsWith(resolve(dest)))
      throw new InputError('bad subdirectory', [{ path: 'git.subdirectory', message: 'must stay inside the repository' }]);
    try {
      if (!(await stat(dir)).isDirectory()) throw new Error();
    } catch {
      throw new InputError(`the repository has no directory ${src.subdirectory}`, [
        { path: 'git.subdirectory', message: `no such directory at ${src.ref}` },
      ]);
    }
    return dir;
  }

  private servicePath(tenant: string, name: string): string {
    // Names become file names: anything but a valid service name is simply not found.
    if (!/^[a-z]([a-z0-9-]*[a-z0-9])?$/.test(name) || !/^[a-z]([a-z0-9-]*[a-z0-9])?$/.test(tenant))
      throw new NotFoundError(`no service ${name}`);
    return join(this.dir, 'services', tenant, `${name}.json`);
  }

  private async recordService(rec: BuildRecord, result: BuildResult): Promise<void> {
    let prev: ServiceRecord | undefined;
    try {
      prev = JSON.parse(await readFile(this.servicePath(rec.tenant, result.name), 'utf8')) as ServiceRecord;
    } catch {
      prev = undefined;
    }
    const svc: ServiceRecord = {
      tenant: rec.tenant,
      name: result.name,
      service: result.service,
      build: rec.id,
      image: result.image,
      base: result.base,
      overlay: rec.overlay,
      chart: result.chart ?? { ref: '', version: '' },
      config: {
        ...DEFAULT_SERVICE_CONFIG,
        ...(prev ? { replicas: prev.config.replicas, memory: prev.config.memory, cpu: prev.config.cpu } : {}),
        port: rec.spec.port ?? this.deps.config.defaults.port,
        route: rec.spec.route ?? `/${result.name}`,
        env: rec.spec.env ?? {},
      },
      revision: (prev?.revision ?? 0) + 1,
      status: 'published',
      updatedAt: new Date().toISOString(),
    };
    await mkdir(join(this.dir, 'services', rec.tenant), { recursive: true });
    await writeJsonAtomic(this.servicePath(rec.tenant, result.name), svc);
  }

  async get(tenant: string, id: string): Promise<BuildRecord> {
    const rec = this.records.get(id);
    if (!rec || rec.tenant !== tenant) throw new NotFoundError(`no build ${id}`);
    return rec;
  }

  async list(tenant: string, filter: BuildFilter): Promise<BuildRecord[]> {
    const out: BuildRecord[] = [];
    const limit = filter.limit ?? 100;
    // Newest first: ids sort by time.
    const ids = [...this.records.keys()].sort().reverse();
    for (const id of ids) {
      const r = this.records.get(id)!;
      if (r.tenant !== tenant) continue;
      if (filter.status && r.status !== filter.status) continue;
      if (filter.service && r.name !== filter.service && r.service !== filter.service) continue;
      out.push(r);
      if (out.length >= limit) break;
    }
    return out;
  }

  async *logs(tenant: string, id: string, opts: { follow: boolean; signal?: AbortSignal }): AsyncIterable<string> {
    await this.get(tenant, id);
    const file = join(this.buildDir(id), 'build.log');
    let offset = 0;
    let rest = '';
    for (;;) {
      let size = 0;
      try {
        size = (await stat(file)).size;
      } catch {
        size = 0;
      }
      if (size > offset) {
        const chunk = await readRange(file, offset, size);
        offset = size;
        const lines = (rest + chunk).split('\n');
        rest = lines.pop() ?? '';
        for (const l of lines) yield l;
      }
      const rec = this.records.get(id)!;
      if (!opts.follow || TERMINAL.has(rec.status) || opts.signal?.aborted) {
        if (rest) yield rest;
        return;
      }
      await new Promise<void>((resolveWait) => {
        const set = this.waiters.get(id) ?? new Set();
        const done = () => {
          set.delete(done);
          clearTimeout(t);
          resolveWait();
        };
        const t = setTimeout(done, 1000);
        set.add(done);
        this.waiters.set(id, set);
        opts.signal?.addEventListener('abort', done, { once: true });
      });
    }
  }

  async cancel(tenant: string, id: string): Promise<BuildRecord> {
    const rec = await this.get(tenant, id);
    if (TERMINAL.has(rec.status))
      throw new ConflictError(`build ${id} has already ${rec.status === 'cancelled' ? 'been cancelled' : rec.status}`);
    if (rec.status === 'queued') {
      rec.status = 'cancelled';
      rec.finishedAt = new Date().toISOString();
      rec.error = { code: 'cancelled', message: 'the build was cancelled before it started' };
      await this.save(rec);
      return rec;
    }
    const done = new Promise<void>((r) => {
      const set = this.waiters.get(id) ?? new Set();
      const check = () => {
        if (TERMINAL.has(this.records.get(id)!.status)) {
          set.delete(check);
          r();
        }
      };
      set.add(check);
      this.waiters.set(id, set);
    });
    this.aborts.get(id)?.abort();
    await done;
    return this.records.get(id)!;
  }

  async retry(tenant: string, id: string): Promise<BuildRecord> {
    const old = await this.get(tenant, id);
    if (!TERMINAL.has(old.status) || old.status === 'succeeded') {
      throw new ConflictError(`build ${id} is ${old.status}; only failed or cancelled builds can be retried`);
    }
    const nid = newBuildId();
    const rec: BuildRecord = {
      id: nid,
      tenant,
      status: 'queued',
      spec: old.spec,
      source: old.source,
      createdAt: new Date().toISOString(),
      name: old.name,
      steps: [],
      attempts: 0,
      retryOf: id,
    };
    await mkdir(this.buildDir(nid), { recursive: true });
    if (old.source.type === 'archive')
      await cp(join(this.buildDir(id), 'source'), join(this.buildDir(nid), 'source'), { recursive: true, verbatimSymlinks: true });
    await this.save(rec);
    this.queue.push(nid);
    this.kick();
    return rec;
  }

  async getService(tenant: string, name: string): Promise<ServiceRecord> {
    try {
      return JSON.parse(await readFile(this.servicePath(tenant, name), 'utf8')) as ServiceRecord;
    } catch {
      throw new NotFoundError(`no service ${name}`);
    }
  }

  async listServices(tenant: string): Promise<ServiceRecord[]> {
    let files: string[] = [];
    try {
      files = (await readdir(join(this.dir, 'services', tenant))).filter((f) => f.endsWith('.json')).sort();
    } catch {
      return [];
    }
    return Promise.all(files.map((f) => this.getService(tenant, f.slice(0, -5))));
  }

  async updateService(tenant: string, name: string, patch: Partial<ServiceConfig>): Promise<ServiceRecord> {
    const svc = await this.getService(tenant, name);
    const next: ServiceRecord = {
      ...svc,
      config: { ...svc.config, ...patch, env: patch.env ?? svc.config.env },
      revision: svc.revision + 1,
      updatedAt: new Date().toISOString(),
    };
    if (this.deps.republish) next.chart = await this.deps.republish(next);
    await writeJsonAtomic(this.servicePath(tenant, name), next);
    return next;
  }

  async deleteService(tenant: string, name: string): Promise<void> {
    await this.getService(tenant, name);
    await rm(this.servicePath(tenant, name), { force: true });
  }
}

/** Git URLs: https anywhere; http and git:// only to loopback; never credentials or options. */
export function checkGitUrl(url: string): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new InputError('invalid git URL', [{ path: 'git.url', message: `"${url}" is not a URL` }]);
  }
  const scheme = u.protocol.replace(/:$/, '');
  if (u.username || u.password) throw new InputError('invalid git URL', [{ path: 'git.url', message: 'must not carry credentials' }]);
  if (scheme === 'https') return;
  if ((scheme === 'http' || scheme === 'git') && isLoopbackHost(u.host)) return;
  throw new InputError('invalid git URL', [{ path: 'git.url', message: `use https:// (${scheme}:// is allowed only for loopback hosts)` }]);
}

async function readRange(file: string, start: number, end: number): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of createReadStream(file, { start, end: end - 1 })) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function moveDir(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
    await cp(from, to, { recursive: true, verbatimSymlinks: true });
    await rm(from, { recursive: true, force: true });
  }
}

export { qualifiedName };
