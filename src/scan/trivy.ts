/**
 * Runs Trivy against an image in the registry, by digest and daemonless (`--image-src
 * remote`), with its vulnerability DB pulled from an OCI repository (`--db-repository`) and
 * nothing else fetched from anywhere: no version check, no Java DB, offline scan. One Trivy
 * run gives the JSON report (with every package listed), converted into a CycloneDX SBOM.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError, UpstreamError } from '../errors.js';
import { parseImageRef } from '../registry/ref.js';
import { run, tail } from '../util/exec.js';
import { parseTrivyReport, type ParsedReport } from './report.js';

export interface ScanImageOptions {
  trivyPath: string;
  /** `host/repo@sha256:…`: scanned by digest, never by tag. */
  image: string;
  /** The registry the image (and usually the DB) is in: plain HTTP means `--insecure`. */
  registry: { host: string; plainHttp: boolean; username?: string; password?: string };
  /** e.g. `127.0.0.1:5000/trivy-db:2`. */
  dbRepository: string;
  cacheDir: string;
  timeoutMs?: number;
  log?: (line: string) => void;
  signal?: AbortSignal;
}

/** The vulnerability DB a scan used (its metadata.json in the cache). */
export interface DbInfo {
  updatedAt?: string;
  nextUpdate?: string;
}

export interface ScanImageResult {
  report: ParsedReport;
  /** Trivy's JSON report as it wrote it. */
  reportJson: string;
  /** CycloneDX JSON SBOM of the image. */
  sbomJson: string;
  db: DbInfo;
}

/** Trivy runs sharing a cache directory take turns (its DB and cache are single-writer). */
const queues = new Map<string, Promise<unknown>>();
function serialized<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const prev = queues.get(key) ?? Promise.resolve();
  const next = prev.then(fn, fn);
  const settled = next.then(
    () => undefined,
    () => undefined,
  );
  queues.set(key, settled);
  void settled.then(() => {
    if (queues.get(key) === settled) queues.delete(key);
  });
  return next;
}

/** The arguments of `trivy image` for one scan (exported for tests and the step CLI). */
export function trivyImageArgs(
  opts: Pick<ScanImageOptions, 'image' | 'registry' | 'dbRepository' | 'cacheDir'>,
  output: string,
  timeoutSeconds: number,
): string[] {
  const args = [
    'image',
    '--image-src',
    'remote',
    '--scanners',
    'vuln',
    '--format',
    'json',
    '--list-all-pkgs',
    '--output',
    output,
    '--cache-dir',
    opts.cacheDir,
    '--db-repository',
    opts.dbRepository,
    '--skip-java-db-update',
    '--offline-scan',
    '--skip-version-check',
    '--disable-telemetry',
    '--no-progress',
    '--timeout',
    `${timeoutSeconds}s`,
  ];
  if (opts.registry.plainHttp) args.push('--insecure');
  args.push(opts.image);
  return args;
}

function trivyEnv(opts: ScanImageOptions): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  // Only what Trivy needs; no TRIVY_* setting of the caller's shell changes a scan.
  const keep = [
    'PATH',
    'HOME',
    'TMPDIR',
    'SSL_CERT_FILE',
    'SSL_CERT_DIR',
    'HTTP_PROXY',
    'HTTPS_PROXY',
    'NO_PROXY',
    'http_proxy',
    'https_proxy',
    'no_proxy',
  ];
  for (const k of keep) if (process.env[k] !== undefined) env[k] = process.env[k];
  if (opts.registry.username !== undefined) {
    env.TRIVY_USERNAME = opts.registry.username;
    env.TRIVY_PASSWORD = opts.registry.password ?? '';
  }
  return env;
}

/**
 * Scans `image` with Trivy; returns the parsed report, Trivy's raw JSON and a CycloneDX SBOM.
 * Throws an UpstreamError with Trivy's own last lines when it fails.
 */
export async function scanImage(opts: ScanImageOptions): Promise<ScanImageResult> {
  const ref = parseImageRef(opts.image);
  if (!ref.digest)
    throw new InputError(`scan ${opts.image}: an image is scanned by digest (host/repo@sha256:…)`, [
      { path: 'image', message: 'needs @sha256:<digest>' },
    ]);
  if (!existsSync(opts.trivyPath))
    throw new UpstreamError(`trivy is not installed at ${opts.trivyPath}; run scripts/install-trivy.sh (or set scan.trivyPath)`);
  const timeoutMs = opts.timeoutMs ?? 900_000;
  return serialized(opts.cacheDir, async () => {
    const work = await mkdtemp(join(tmpdir(), 'svcbuild-scan-'));
    try {
      const reportFile = join(work, 'report.json');
      const sbomFile = join(work, 'sbom.cdx.json');
      const env = trivyEnv(opts);
      const onLine = opts.log;
      const scan = await run(opts.trivyPath, trivyImageArgs(opts, reportFile, Math.ceil(timeoutMs / 1000)), {
        env,
        onLine,
        timeoutMs: timeoutMs + 30_000,
        signal: opts.signal,
      });
      if (scan.code !== 0)
        throw new UpstreamError(`trivy could not scan ${opts.image} (exit ${scan.code}):\n${tail(scan.output, 30)}`, undefined, {
          code: scan.code,
        });
      const convert = await run(opts.trivyPath, ['convert', '--format', 'cyclonedx', '--output', sbomFile, reportFile], {
        env,
        onLine,
        timeoutMs: 120_000,
        signal: opts.signal,
      });
      if (convert.code !== 0)
        throw new UpstreamError(`trivy could not write the SBOM of ${opts.image} (exit ${convert.code}):\n${tail(convert.output, 30)}`);
      const reportJson = await readFile(reportFile, 'utf8');
      const sbomJson = await readFile(sbomFile, 'utf8');
      return { report: parseTrivyReport(reportJson), reportJson, sbomJson, db: await readDbInfo(opts.cacheDir) };
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
}

/** The metadata of the DB in a Trivy cache directory ({} when there is none). */
export async function readDbInfo(cacheDir: string): Promise<DbInfo> {
  try {
    const meta = JSON.parse(await readFile(join(cacheDir, 'db', 'metadata.json'), 'utf8')) as { UpdatedAt?: unknown; NextUpdate?: unknown };
    const out: DbInfo = {};
    if (typeof meta.UpdatedAt === 'string') out.updatedAt = meta.UpdatedAt;
    if (typeof meta.NextUpdate === 'string') out.nextUpdate = meta.NextUpdate;
    return out;
  } catch {
    return {};
  }
}

/** `trivy --version`'s version, e.g. `0.74.0`; throws when trivy is missing. */
export async function trivyVersion(trivyPath: string): Promise<string> {
  const res = await run(trivyPath, ['--version']).catch(() => undefined);
  const m = res && res.code === 0 ? /^Version:\s*(\S+)/m.exec(res.stdout) : null;
  if (!m) throw new UpstreamError(`trivy is not installed at ${trivyPath}; run scripts/install-trivy.sh`);
  return m[1] as string;
}
