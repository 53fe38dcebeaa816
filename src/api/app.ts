/**
 * The HTTP API: createApp(deps) builds the Express app without listening, so tests and the
 * server compose it the same way. Business code throws our error classes; the one error
 * middleware at the end maps them to a status and one body shape.
 */
import busboy from 'busboy';
import express, { type NextFunction, type Request, type Response } from 'express';
import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import type { Config } from '../config/schema.js';
import { BUILD_STATUSES, BuildSpecSchema, GitBuildRequestSchema, TERMINAL, type BuildRecord, type BuildSpec } from '../domain/build.js';
import { AuthError, InputError, NotFoundError, SvcbuildError, throwIfIssues, type Issue } from '../errors.js';
import { checkServiceName } from '../domain/names.js';
import type { Executor } from '../executors/executor.js';
import { extractArchive, DEFAULT_ARCHIVE_LIMITS, type ArchiveLimits } from '../source/archive.js';
import { Metrics } from './metrics.js';
import { openApiDocument } from './openapi.js';
import type { TokenStore } from './tokens.js';

export interface AppDeps {
  config: Config;
  executor: Executor;
  tokens: TokenStore;
  /** Structured log sink: one JSON object per line. */
  log?: (entry: Record<string, unknown>) => void;
  archiveLimits?: Partial<ArchiveLimits>;
}

declare module 'express-serve-static-core' {
  interface Request {
    id: string;
    tenant?: string;
  }
}

const SERVICE_PATCH = z
  .object({
    port: z.number().int().min(1024).max(65535).optional(),
    route: z
      .string()
      .regex(/^\/([a-z0-9._~-]+(\/[a-z0-9._~-]+)*)?$/, 'a path like /my/service')
      .optional(),
    env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'letters, digits and _'), z.string().max(4096)).optional(),
    replicas: z.number().int().min(0).max(50).optional(),
    memory: z
      .string()
      .regex(/^[1-9][0-9]*(Mi|Gi)$/, 'a quantity such as 256Mi or 1Gi')
      .optional(),
    cpu: z
      .string()
      .regex(/^([1-9][0-9]*m|[1-9][0-9]*(\.[0-9]+)?)$/, 'a quantity such as 250m or 1')
      .optional(),
  })
  .strict();

/** A service name from the path; a name that can never be valid is not found (never a file path). */
const SERVICE_PARAM_RE = /^[a-z]([a-z0-9-]{0,62}[a-z0-9])?$/;
function serviceParam(req: Request): string {
  const name = String(req.params.name);
  if (!SERVICE_PARAM_RE.test(name)) throw new NotFoundError(`no service ${name.slice(0, 64)}`);
  return name;
}

function zodIssues(err: z.ZodError, prefix: string): Issue[] {
  return err.issues.map((i) => ({ path: [prefix, ...i.path].filter((p) => p !== '').join('.'), message: i.message }));
}

/** The build as the API shows it, with links. */
export function buildView(b: BuildRecord): Record<string, unknown> {
  return {
    id: b.id,
    status: b.status,
    service: b.name ?? null,
    qualifiedService: b.service ?? null,
    kind: b.kind ?? null,
    spec: b.spec,
    source: b.source,
    createdAt: b.createdAt,
    startedAt: b.startedAt ?? null,
    finishedAt: b.finishedAt ?? null,
    steps: b.steps.map((s) => ({ name: s.name, status: s.status, seconds: s.seconds ?? null, message: s.message ?? null })),
    image: b.image ?? null,
    base: b.base ?? null,
    overlay: b.overlay ?? null,
    chart: b.chart ?? null,
    scan: b.scan ?? null,
    error: b.error ?? null,
    retryOf: b.retryOf ?? null,
    attempts: b.attempts,
    links: {
      self: `/v1/builds/${b.id}`,
      logs: `/v1/builds/${b.id}/logs`,
      cancel: `/v1/builds/${b.id}/cancel`,
      retry: `/v1/builds/${b.id}/retry`,
    },
  };
}

export function createApp(deps: AppDeps): express.Express {
  const app = express();
  const metrics = new Metrics();
  const log = deps.log ?? ((e: Record<string, unknown>) => process.stdout.write(JSON.stringify(e) + '\n'));
  const limits: ArchiveLimits = { ...DEFAULT_ARCHIVE_LIMITS, ...(deps.archiveLimits ?? {}) };
  app.disable('x-powered-by');
  app.set('query parser', 'simple');

  // Request id, timing, one structured log line per request, metrics.
  app.use((req: Request, res: Response, next: NextFunction) => {
    const given = req.get('x-request-id');
    req.id = given && /^[A-Za-z0-9._-]{1,128}$/.test(given) ? given : randomUUID();
    res.setHeader('X-Request-Id', req.id);
    const started = performance.now();
    res.on('finish', () => {
      const route = (req.route?.path as string | undefined) ?? 'unmatched';
      const seconds = (performance.now() - started) / 1000;
      metrics.inc('svcbuild_http_requests_total', { method: req.method, route, status: String(res.statusCode) }, 'HTTP requests answered');
      metrics.observe('svcbuild_http_request_duration_seconds', { method: req.method, route }, seconds);
      log({
        time: new Date().toISOString(),
        level: res.statusCode >= 500 ? 'error' : 'info',
        msg: 'request',
        requestId: req.id,
        method: req.method,
        path: req.path,
        route,
        status: res.statusCode,
        ms: Math.round(seconds * 1000),
        tenant: req.tenant,
      });
    });
    next();
  });

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    const ready = await deps.executor.ready();
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not ready', executor: deps.executor.name });
  });
  app.get('/metrics', async (_req, res) => {
    res.type('text/plain; version=0.0.4').send(metrics.render());
  });
  app.get('/openapi.json', (_req, res) => {
    res.json(openApiDocument);
  });

  // Everything under /v1 needs a bearer token; the token decides the tenant.
  const auth = async (req: Request, _res: Response, next: NextFunction) => {
    const h = req.get('authorization') ?? '';
    const m = /^Bearer ([A-Za-z0-9_.~+/=-]{10,200})$/.exec(h);
    if (!m)
      throw new AuthError('missing bearer token: send Authorization: Bearer <token> (create one with `svcbuild token create --tenant T`)');
    const tenant = await deps.tokens.tenantOf(m[1]!);
    if (!tenant) throw new AuthError('unknown or revoked token');
    req.tenant = tenant;
    next();
  };
  app.use('/v1', auth);

  app.get('/v1/base-images', (_req, res) => {
    res.json({
      items: Object.entries(deps.config.baseImages).map(([name, s]) => ({
        name,
        kind: s.kind,
        languageVersion: s.languageVersion ?? null,
        description: s.description,
      })),
    });
  });

  app.post('/v1/builds', async (req: Request, res: Response) => {
    const tenant = req.tenant!;
    const idempotencyKey = req.get('idempotency-key');
    if (idempotencyKey !== undefined && !/^[\x21-\x7e]{1,128}$/.test(idempotencyKey)) {
      throw new InputError('invalid Idempotency-Key', [{ path: 'Idempotency-Key', message: '1-128 printable ASCII characters' }]);
    }
    const type = req.get('content-type') ?? '';
    let result: { record: BuildRecord; created: boolean };
    const checkSpec = (spec: BuildSpec) => {
      if (spec.name !== undefined) throwIfIssues('invalid build request', checkServiceName(spec.name, tenant, 'spec.name'));
    };
    if (type.startsWith('multipart/form-data')) {
      const { spec, dir, info } = await receiveArchive(req, limits);
      try {
        checkSpec(spec);
      } catch (e) {
        await rm(dir, { recursive: true, force: true });
        throw e;
      }
      try {
        result = await deps.executor.submit({ tenant, spec, source: { type: 'archive', dir, info }, idempotencyKey });
      } catch (e) {
        await rm(dir, { recursive: true, force: true });
        throw e;
      }
    } else if (type.startsWith('application/json')) {
      const body = await readJson(req, 64 * 1024);
      const parsed = GitBuildRequestSchema.safeParse(body);
      if (!parsed.success) throw new InputError('invalid build request', zodIssues(parsed.error, ''));
      checkSpec(parsed.data.spec);
      result = await deps.executor.submit({
        tenant,
        spec: parsed.data.spec,
        source: { type: 'git', git: parsed.data.git },
        idempotencyKey,
      });
    } else {
      throw new InputError('unsupported content type', [
        {
          path: 'Content-Type',
          message:
            'send multipart/form-data with a "source" archive (zip or tar.gz) and a "spec" JSON field, or application/json with a "git" source',
        },
      ]);
    }
    if (result.created) metrics.inc('svcbuild_builds_submitted_total', { tenant }, 'Builds submitted');
    res
      .status(result.created ? 202 : 200)
      .location(`/v1/builds/${result.record.id}`)
      .json(buildView(result.record));
  });

  app.get('/v1/builds', async (req: Request, res: Response) => {
    const q = z
      .object({
        service: z.string().max(64).optional(),
        status: z.enum(BUILD_STATUSES).optional(),
        limit: z.coerce.number().int().min(1).max(1000).optional(),
      })
      .strict()
      .safeParse(req.query);
    if (!q.success) throw new InputError('invalid query', zodIssues(q.error, 'query'));
    const items = await deps.executor.list(req.tenant!, q.data);
    res.json({ items: items.map(buildView) });
  });

  app.get('/v1/builds/:id', async (req: Request, res: Response) => {
    res.json(buildView(await deps.executor.get(req.tenant!, String(req.params.id))));
  });

  app.get('/v1/builds/:id/logs', async (req: Request, res: Response) => {
    const id = String(req.params.id);
    await deps.executor.get(req.tenant!, id);
    const follow = req.query.follow === 'true' || req.query.follow === '1';
    const abort = new AbortController();
    req.on('close', () => abort.abort());
    if (follow || (req.get('accept') ?? '').includes('text/event-stream')) {
      res.status(200).set({ 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
      res.flushHeaders();
      for await (const line of deps.executor.logs(req.tenant!, id, { follow: true, signal: abort.signal })) {
        res.write(`data: ${line.replace(/\r?\n/g, ' ')}\n\n`);
      }
      const rec = await deps.executor.get(req.tenant!, id);
      res.write(`event: end\ndata: ${JSON.stringify({ status: rec.status })}\n\n`);
      res.end();
      return;
    }
    const lines: string[] = [];
    for await (const line of deps.executor.logs(req.tenant!, id, { follow: false })) lines.push(line);
    res.type('text/plain').send(lines.join('\n') + (lines.length ? '\n' : ''));
  });

  app.post('/v1/builds/:id/cancel', async (req: Request, res: Response) => {
    res.json(buildView(await deps.executor.cancel(req.tenant!, String(req.params.id))));
  });

  app.post('/v1/builds/:id/retry', async (req: Request, res: Response) => {
    const rec = await deps.executor.retry(req.tenant!, String(req.params.id));
    res.status(202).location(`/v1/builds/${rec.id}`).json(buildView(rec));
  });

  app.get('/v1/services', async (req: Request, res: Response) => {
    res.json({ items: await deps.executor.listServices(req.tenant!) });
  });
  app.get('/v1/services/:name', async (req: Request, res: Response) => {
    res.json(await deps.executor.getService(req.tenant!, serviceParam(req)));
  });
  app.patch('/v1/services/:name', async (req: Request, res: Response) => {
    const name = serviceParam(req);
    if (!(req.get('content-type') ?? '').startsWith('application/json')) {
      throw new InputError('unsupported content type', [{ path: 'Content-Type', message: 'send application/json' }]);
    }
    const parsed = SERVICE_PATCH.safeParse(await readJson(req, 64 * 1024));
    if (!parsed.success) throw new InputError('invalid service change', zodIssues(parsed.error, ''));
    res.json(await deps.executor.updateService(req.tenant!, name, parsed.data));
  });
  app.delete('/v1/services/:name', async (req: Request, res: Response) => {
    await deps.executor.deleteService(req.tenant!, serviceParam(req));
    res.status(204).end();
  });

  app.use((req: Request, _res: Response) => {
    throw new NotFoundError(`no route ${req.method} ${req.path}`);
  });

  // The one error middleware: our error classes to a status and one body shape.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    let status = 500;
    let code = 'internal';
    let message = 'internal error';
    let issues: Issue[] | undefined;
    if (err instanceof SvcbuildError) {
      status = err.status;
      code = err.code;
      message = err instanceof InputError && err.issues.length ? err.message.split('\n')[0]! : err.message;
      if (err instanceof InputError) issues = err.issues;
    } else if (err && typeof err === 'object' && 'type' in err && (err as { type: string }).type === 'entity.too.large') {
      status = 413;
      code = 'too_large';
      message = 'request body too large';
    } else if (err instanceof URIError) {
      // Express could not decode a path parameter (bad percent-encoding).
      status = 400;
      code = 'invalid_input';
      message = 'the request path is not valid percent-encoding';
    } else {
      log({
        time: new Date().toISOString(),
        level: 'error',
        msg: 'unhandled error',
        requestId: req.id,
        error: err instanceof Error ? err.stack : String(err),
      });
    }
    if (status === 401) res.setHeader('WWW-Authenticate', 'Bearer realm="svcbuild"');
    if (res.headersSent) {
      res.end();
      return;
    }
    res.status(status).json({ error: { code, message, ...(issues ? { issues } : {}), requestId: req.id } });
  });
  return app;
}

async function readJson(req: Request, max: number): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > max) throw new InputError('request body too large', [{ path: 'body', message: `at most ${max} bytes` }]);
    chunks.push(c as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (e) {
    throw new InputError('the body is not valid JSON', [{ path: 'body', message: (e as Error).message }]);
  }
}

/**
 * Streams a multipart upload: the "source" file to a temporary file (size-limited), the
 * "spec" field as JSON; then checks and extracts the archive. Nothing survives a failure.
 */
async function receiveArchive(
  req: Request,
  limits: ArchiveLimits,
): Promise<{ spec: BuildSpec; dir: string; info: { type: 'archive'; format: string; sha256: string; files: number; bytes: number } }> {
  const tmp = await mkdtemp(join(tmpdir(), 'svcbuild-upload-'));
  try {
    let specText: string | undefined;
    let gotFile = false;
    let tooLarge = false;
    const issues: Issue[] = [];
    await new Promise<void>((resolve, reject) => {
      let bb: busboy.Busboy;
      try {
        bb = busboy({
          headers: req.headers,
          limits: { files: 1, fields: 4, fileSize: limits.maxArchiveBytes, fieldSize: 64 * 1024, parts: 6 },
        });
      } catch (e) {
        reject(new InputError('invalid multipart request', [{ path: 'body', message: (e as Error).message }]));
        return;
      }
      const writes: Promise<void>[] = [];
      bb.on('file', (name, stream) => {
        if (name !== 'source' || gotFile) {
          issues.push({ path: name || '(unnamed part)', message: 'unexpected file part: send the archive once, as "source"' });
          stream.resume();
          return;
        }
        gotFile = true;
        stream.on('limit', () => {
          tooLarge = true;
        });
        writes.push(pipeline(stream, createWriteStream(join(tmp, 'upload'))));
      });
      bb.on('field', (name, value, info) => {
        if (name === 'spec') {
          if (info.valueTruncated) issues.push({ path: 'spec', message: 'at most 64 KiB' });
          specText = value;
        } else issues.push({ path: name || '(unnamed part)', message: 'unexpected field: only "source" and "spec"' });
      });
      bb.on('partsLimit', () => issues.push({ path: 'body', message: 'too many parts' }));
      bb.on('error', (e) => reject(new InputError('invalid multipart request', [{ path: 'body', message: (e as Error).message }])));
      bb.on('close', () => {
        Promise.all(writes).then(() => resolve(), reject);
      });
      req.pipe(bb);
    });
    if (tooLarge) issues.push({ path: 'source', message: `the archive is larger than ${limits.maxArchiveBytes} bytes` });
    if (!gotFile) issues.push({ path: 'source', message: 'missing: attach the project as a zip or tar.gz file part named "source"' });
    let spec: BuildSpec = {};
    if (specText !== undefined) {
      let raw: unknown;
      try {
        raw = JSON.parse(specText);
      } catch (e) {
        issues.push({ path: 'spec', message: `not valid JSON: ${(e as Error).message}` });
      }
      if (raw !== undefined) {
        const parsed = BuildSpecSchema.safeParse(raw);
        if (!parsed.success) issues.push(...zodIssues(parsed.error, 'spec'));
        else spec = parsed.data;
      }
    }
    if (issues.length) throw new InputError('invalid build request', issues);
    const dir = await mkdtemp(join(tmpdir(), 'svcbuild-source-'));
    await rm(dir, { recursive: true, force: true });
    const res = await extractArchive(join(tmp, 'upload'), dir, limits);
    if (res.files === 0) {
      await rm(dir, { recursive: true, force: true });
      throw new InputError('invalid build request', [
        { path: 'source', message: 'the archive holds no files: pack the project directory itself' },
      ]);
    }
    return { spec, dir, info: { type: 'archive', format: res.format, sha256: res.sha256, files: res.files, bytes: res.bytes } };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

export { TERMINAL };
