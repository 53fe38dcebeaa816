/**
 * The scan step of a build: Trivy on the image by digest, the base image's report (scanned
 * and attached to the base when it has none made with the same vulnerability DB), the diff,
 * the gate, and both reports attached to the image. A failed gate is a BuildError of step
 * `scan` (exit 7: the retry policy never retries it) carrying the summary.
 */
import { BuildError, InputError } from '../errors.js';
import type { RegistryClient } from '../registry/client.js';
import { parseImageRef } from '../registry/ref.js';
import { describeFinding, diffAgainstBase, gate, type GateResult } from './gate.js';
import { ANNOTATIONS, REPORT_ARTIFACT_TYPE, attachReports, findAttached } from './referrers.js';
import { parseTrivyReport, type ParsedReport } from './report.js';
import { TRIVY_VERSION, type ScanSettings } from './settings.js';
import { scanImage, type DbInfo, type ScanImageOptions } from './trivy.js';

export interface RegistryAccess {
  host: string;
  plainHttp: boolean;
  username?: string;
  password?: string;
}

export interface ScanContext {
  client: RegistryClient;
  registry: RegistryAccess;
  settings: ScanSettings;
  log?: (line: string) => void;
  signal?: AbortSignal;
  /** Injected for tests; default: the real Trivy. */
  scan?: (opts: ScanImageOptions) => ReturnType<typeof scanImage>;
}

export interface ScanStepInput extends ScanContext {
  /** The built image, `host/repo@sha256:…`. */
  image: string;
  /** Its base image, `host/repo@sha256:…`. */
  base: string;
  now?: Date;
}

/** What the build status and `svcbuild build --json` show as `scan`. */
export interface ScanSummary extends GateResult {
  /** Digest of the Trivy JSON report artifact attached to the image. */
  report: string;
  /** Digest of the CycloneDX SBOM artifact attached to the image. */
  sbom: string;
  /** Digest of the base image's report artifact the image was compared with. */
  baseReport: string;
  /** True when this step scanned the base (it had no report for the same DB). */
  baseScanned: boolean;
  scanner: string;
  db: DbInfo;
}

/** A failed scan gate: the build stops, listing what blocks it. */
export class ScanGateError extends BuildError {
  constructor(readonly summary: ScanSummary) {
    const n = summary.blocking.length;
    super(
      `the scan gate failed: ${n} new finding${n === 1 ? '' : 's'} at or above ${summary.threshold} that the base image does not have:\n` +
        summary.blocking.map((f) => `  - ${describeFinding(f)}`).join('\n') +
        '\nupdate the dependency, or accept a finding with a scan.ignore entry (id, reason, expires)',
      'scan',
      summary,
    );
  }
}

function repoOf(image: string, client: RegistryClient): { repo: string; digest: string } {
  const ref = parseImageRef(image);
  if (!ref.digest)
    throw new InputError(`scan: ${image} is not a reference by digest`, [{ path: 'image', message: 'needs @sha256:<digest>' }]);
  if (ref.host !== client.host)
    throw new InputError(`scan: ${image} is not in registry ${client.host}`, [{ path: 'image', message: `not in ${client.host}` }]);
  return { repo: ref.repo, digest: ref.digest };
}

function scanOptions(ctx: ScanContext, image: string): ScanImageOptions {
  const o: ScanImageOptions = {
    trivyPath: ctx.settings.trivyPath,
    image,
    registry: ctx.registry,
    dbRepository: ctx.settings.dbRepository,
    cacheDir: ctx.settings.cacheDir,
    timeoutMs: ctx.settings.timeoutSeconds * 1000,
  };
  if (ctx.log) o.log = ctx.log;
  if (ctx.signal) o.signal = ctx.signal;
  return o;
}

export interface ScannedImage {
  report: ParsedReport;
  db: DbInfo;
  reportDigest: string;
  sbomDigest: string;
}

/** Scans an image and attaches its report and SBOM to it (what base images get when built). */
export async function scanAndAttach(ctx: ScanContext, image: string, now = new Date()): Promise<ScannedImage> {
  const { repo, digest } = repoOf(image, ctx.client);
  const res = await (ctx.scan ?? scanImage)(scanOptions(ctx, image));
  const attached = await attachReports(ctx.client, repo, digest, res.reportJson, res.sbomJson, attachOpts(res.report, res.db, now));
  return { report: res.report, db: res.db, reportDigest: attached.report.digest, sbomDigest: attached.sbom.digest };
}

/** `trivy <version>` as the report says (the pinned version when it does not). */
function scannerOf(report: ParsedReport): string {
  return `trivy ${report.trivyVersion ?? TRIVY_VERSION}`;
}

function attachOpts(report: ParsedReport, db: DbInfo, now: Date): { scanner: string; now: Date; dbUpdatedAt?: string } {
  const o: { scanner: string; now: Date; dbUpdatedAt?: string } = { scanner: scannerOf(report), now };
  if (db.updatedAt) o.dbUpdatedAt = db.updatedAt;
  return o;
}

/**
 * The report attached to an image, when one was made with the vulnerability DB of
 * `db.updatedAt` (any report when that is unknown).
 */
export async function attachedReport(
  client: RegistryClient,
  image: string,
  db: DbInfo = {},
): Promise<{ report: ParsedReport; digest: string } | undefined> {
  const { repo, digest } = repoOf(image, client);
  const found = await findAttached(client, repo, digest, REPORT_ARTIFACT_TYPE);
  if (!found) return undefined;
  if (db.updatedAt && found.annotations[ANNOTATIONS.dbUpdatedAt] !== db.updatedAt) return undefined;
  return { report: parseTrivyReport(found.content.toString('utf8')), digest: found.descriptor.digest };
}

/**
 * The scan step: scans `image`, compares it with the base image's report, decides the gate
 * and attaches the reports to the image. Returns the summary when the gate passes; throws a
 * ScanGateError (a BuildError of step `scan`) carrying it when the gate fails.
 */
export async function scanStep(input: ScanStepInput): Promise<ScanSummary> {
  const now = input.now ?? new Date();
  const log = input.log ?? (() => undefined);
  const { repo, digest } = repoOf(input.image, input.client);
  repoOf(input.base, input.client);

  log(`scanning ${input.image}`);
  const res = await (input.scan ?? scanImage)(scanOptions(input, input.image));

  let base = await attachedReport(input.client, input.base, res.db);
  let baseScanned = false;
  if (base) {
    log(`base image report ${base.digest} (same vulnerability DB)`);
  } else {
    log(`the base image has no report made with this vulnerability DB: scanning ${input.base}`);
    const scanned = await scanAndAttach(input, input.base, now);
    base = { report: scanned.report, digest: scanned.reportDigest };
    baseScanned = true;
  }

  const decision = gate(diffAgainstBase(res.report.findings, base.report.findings), {
    threshold: input.settings.threshold,
    ignore: input.settings.ignore,
    now,
  });
  for (const e of decision.expiredIgnores)
    log(`ignore entry ${e.id}${e.pkg ? ` (${e.pkg})` : ''} expired on ${e.expires}: it no longer applies`);
  for (const f of decision.ignored) log(`ignored: ${describeFinding(f)}: ${f.reason}`);

  const attached = await attachReports(input.client, repo, digest, res.reportJson, res.sbomJson, attachOpts(res.report, res.db, now));
  const summary: ScanSummary = {
    ...decision,
    report: attached.report.digest,
    sbom: attached.sbom.digest,
    baseReport: base.digest,
    baseScanned,
    scanner: scannerOf(res.report),
    db: res.db,
  };
  log(
    `gate ${summary.gate} at ${summary.threshold}: new ${countsLine(summary.counts.new)}; inherited ${countsLine(summary.counts.inherited)}`,
  );
  if (summary.gate === 'fail') throw new ScanGateError(summary);
  return summary;
}

/** `CRITICAL 0, HIGH 1, MEDIUM 0, LOW 0, UNKNOWN 0`. */
export function countsLine(c: GateResult['counts']['new']): string {
  return Object.entries(c)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
}

/** One line for the step record: `pass (new: 0 HIGH+, inherited: 3)`. */
export function describeSummary(s: ScanSummary): string {
  const sum = (c: GateResult['counts']['new']) => Object.values(c).reduce((a, b) => a + b, 0);
  return `gate ${s.gate} at ${s.threshold}: ${sum(s.counts.new)} new, ${sum(s.counts.inherited)} inherited, ${s.ignored.length} ignored`;
}
