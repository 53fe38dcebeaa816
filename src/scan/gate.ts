/**
 * The scan gate, pure: which findings an image adds to its base image, and whether those at
 * or above a threshold (minus an ignore list with expiries) block the release.
 */
import { z } from 'zod';
import { InputError } from '../errors.js';
import {
  SEVERITIES,
  compareFindings,
  countBySeverity,
  findingKey,
  severityRank,
  type Finding,
  type Severity,
  type SeverityCounts,
} from './report.js';

/** An image's findings split by whether its base image has the same one. */
export interface FindingsDiff {
  /** Not in the base image's report: what the build added. */
  new: Finding[];
  /** Also in the base image's report (same id, package, installed version and path). */
  inherited: Finding[];
}

/**
 * Splits an image's findings into those its base image already has (`inherited`) and the
 * others (`new`), keyed by (vulnerability id, package, installed version, path).
 */
export function diffAgainstBase(imageFindings: readonly Finding[], baseFindings: readonly Finding[]): FindingsDiff {
  const base = new Set(baseFindings.map(findingKey));
  const out: FindingsDiff = { new: [], inherited: [] };
  for (const f of imageFindings) (base.has(findingKey(f)) ? out.inherited : out.new).push(f);
  out.new.sort(compareFindings);
  out.inherited.sort(compareFindings);
  return out;
}

const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;

/**
 * One accepted finding. `expires` is a date (`2026-12-31`: ignored through that day, UTC)
 * or an ISO timestamp; once past, the entry stops ignoring and is reported as expired.
 * Without `pkg` the entry covers the id in every package.
 */
export const IgnoreEntrySchema = z.object({
  id: z.string().min(1).describe('Vulnerability id, e.g. CVE-2024-1234'),
  pkg: z.string().min(1).optional().describe('Only this package (default: any package)'),
  reason: z.string().trim().min(1, 'say why the finding is accepted').describe('Why the finding is accepted'),
  expires: z
    .string()
    .refine((s) => !Number.isNaN(expiryTime(s)), 'a date (YYYY-MM-DD) or an ISO 8601 timestamp')
    .optional()
    .describe('When the entry stops ignoring (YYYY-MM-DD: after that day, UTC)'),
});
export type IgnoreEntry = z.infer<typeof IgnoreEntrySchema>;

export const SeveritySchema = z.enum(SEVERITIES);

/** The instant an entry expires: the end of the day for a date, else the timestamp. */
export function expiryTime(expires: string): number {
  if (DATE_ONLY.test(expires)) {
    const t = Date.parse(`${expires}T00:00:00Z`);
    // Date.parse rolls 2026-02-30 over to March: only a date that round-trips is one.
    if (Number.isNaN(t) || new Date(t).toISOString().slice(0, 10) !== expires) return NaN;
    return t + 24 * 3600 * 1000;
  }
  if (!/^\d{4}-\d{2}-\d{2}T/.test(expires)) return NaN;
  return Date.parse(expires);
}

export function isExpired(entry: IgnoreEntry, now: Date): boolean {
  return entry.expires !== undefined && now.getTime() >= expiryTime(entry.expires);
}

export interface GateOptions {
  /** Findings at or above this severity block, unless inherited or ignored. */
  threshold: Severity;
  ignore?: readonly IgnoreEntry[];
  now: Date;
}

/** A finding the gate let through because of an ignore entry. */
export interface IgnoredFinding extends Finding {
  reason: string;
  expires?: string;
}

export interface GateResult {
  gate: 'pass' | 'fail';
  threshold: Severity;
  counts: { new: SeverityCounts; inherited: SeverityCounts };
  /** New findings at or above the threshold not covered by a live ignore entry. */
  blocking: Finding[];
  /** New findings at or above the threshold that a live ignore entry let through. */
  ignored: IgnoredFinding[];
  /** Ignore entries past their expiry (they ignore nothing any more). */
  expiredIgnores: IgnoreEntry[];
}

/**
 * Decides the gate: it fails when a new finding is at or above the threshold and no live
 * ignore entry covers it. Inherited findings never block; they are counted.
 */
export function gate(findings: FindingsDiff, opts: GateOptions): GateResult {
  if (!(SEVERITIES as readonly string[]).includes(opts.threshold)) {
    throw new InputError(`unknown scan threshold "${String(opts.threshold)}"`, [
      { path: 'scan.threshold', message: `one of ${SEVERITIES.join(', ')}` },
    ]);
  }
  const entries = opts.ignore ?? [];
  const live = entries.filter((e) => !isExpired(e, opts.now));
  const expiredIgnores = entries.filter((e) => isExpired(e, opts.now));
  const min = severityRank(opts.threshold);
  const blocking: Finding[] = [];
  const ignored: IgnoredFinding[] = [];
  for (const f of findings.new) {
    if (severityRank(f.severity) < min) continue;
    const entry = live.find((e) => e.id === f.id && (e.pkg === undefined || e.pkg === f.pkg));
    if (!entry) {
      blocking.push(f);
      continue;
    }
    const i: IgnoredFinding = { ...f, reason: entry.reason };
    if (entry.expires !== undefined) i.expires = entry.expires;
    ignored.push(i);
  }
  return {
    gate: blocking.length ? 'fail' : 'pass',
    threshold: opts.threshold,
    counts: { new: countBySeverity(findings.new), inherited: countBySeverity(findings.inherited) },
    blocking,
    ignored,
    expiredIgnores,
  };
}

/** One line per finding: `HIGH CVE-… werkzeug 3.1.9 (fixed in 3.1.10) at <path>`. */
export function describeFinding(f: Finding): string {
  return `${f.severity} ${f.id} ${f.pkg} ${f.installed}${f.fixed ? ` (fixed in ${f.fixed})` : ' (no fix yet)'} at ${f.path}`;
}
