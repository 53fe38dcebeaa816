/**
 * Trivy's JSON report (schema 2), read into svcbuild findings. Pure.
 *
 * A finding is keyed by (vulnerability id, package, installed version, path): the same key
 * in an image and in its base image means the image inherited the finding.
 */
import { UpstreamError } from '../errors.js';

/** Trivy's severities, lowest first. */
export const SEVERITIES = ['UNKNOWN', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL'] as const;
export type Severity = (typeof SEVERITIES)[number];

/** Counts of findings by severity, every severity present (0 when none). */
export type SeverityCounts = Record<Severity, number>;

export function severityRank(s: Severity): number {
  return SEVERITIES.indexOf(s);
}

export function isSeverity(s: unknown): s is Severity {
  return typeof s === 'string' && (SEVERITIES as readonly string[]).includes(s);
}

export function emptyCounts(): SeverityCounts {
  return { CRITICAL: 0, HIGH: 0, MEDIUM: 0, LOW: 0, UNKNOWN: 0 };
}

export function countBySeverity(findings: readonly Finding[]): SeverityCounts {
  const c = emptyCounts();
  for (const f of findings) c[f.severity] += 1;
  return c;
}

/** One vulnerability of one installed package at one place in the image. */
export interface Finding {
  /** Vulnerability id, e.g. CVE-2024-1234 or GHSA-xxxx-xxxx-xxxx. */
  id: string;
  /** Package name as Trivy reports it (the binary package for Debian, e.g. libc6). */
  pkg: string;
  installed: string;
  /** The first fixed version(s), when a fix exists. */
  fixed?: string;
  severity: Severity;
  /**
   * Where the package is: the file Trivy found it in for language packages (e.g.
   * `project/the_venv/lib/python3.13/site-packages/werkzeug-3.1.9.dist-info/METADATA`), else
   * the result's target for lock files, and `os:<family>` (e.g. `os:debian`) for OS packages,
   * so the same OS package compares equal in an image and its base whatever their names.
   */
  path: string;
  /** Trivy's result target, e.g. `Python`, `Node.js`, or `<image> (debian 13.7)`. */
  target: string;
  /** Trivy's result class: `os-pkgs` or `lang-pkgs`. */
  class: string;
  /** Trivy's result type, e.g. `debian`, `python-pkg`, `node-pkg`. */
  type: string;
  title?: string;
  url?: string;
  /** Trivy's status of the advisory: fixed, affected, will_not_fix, ... */
  status?: string;
  /** diff_id of the image layer that installed the package. */
  layer?: string;
}

/** What svcbuild reads from a Trivy JSON report. */
export interface ParsedReport {
  artifactName: string;
  /** The OS Trivy detected, e.g. `{ family: 'debian', name: '13.7' }`. */
  os?: { family: string; name: string };
  /** Trivy's version, when the report carries it. */
  trivyVersion?: string;
  /** Sorted by severity (highest first), then id, package, path; no duplicate keys. */
  findings: Finding[];
}

/** The key a finding is matched by between an image and its base. */
export function findingKey(f: Pick<Finding, 'id' | 'pkg' | 'installed' | 'path'>): string {
  return JSON.stringify([f.id, f.pkg, f.installed, f.path]);
}

/** Orders findings: highest severity first, then by id, package, installed version, path. */
export function compareFindings(a: Finding, b: Finding): number {
  return (
    severityRank(b.severity) - severityRank(a.severity) ||
    cmp(a.id, b.id) ||
    cmp(a.pkg, b.pkg) ||
    cmp(a.installed, b.installed) ||
    cmp(a.path, b.path)
  );
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

interface TrivyVulnerability {
  VulnerabilityID?: unknown;
  PkgName?: unknown;
  PkgPath?: unknown;
  InstalledVersion?: unknown;
  FixedVersion?: unknown;
  Severity?: unknown;
  Status?: unknown;
  Title?: unknown;
  PrimaryURL?: unknown;
  Layer?: { DiffID?: unknown };
}

interface TrivyResult {
  Target?: unknown;
  Class?: unknown;
  Type?: unknown;
  Vulnerabilities?: TrivyVulnerability[] | null;
}

interface TrivyReport {
  SchemaVersion?: unknown;
  ArtifactName?: unknown;
  Metadata?: { OS?: { Family?: unknown; Name?: unknown } };
  Trivy?: { Version?: unknown };
  Results?: TrivyResult[] | null;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/**
 * Reads a Trivy JSON report (`trivy image --format json`, schema 2) into findings.
 * Throws an UpstreamError naming the problem when the text is not such a report.
 */
export function parseTrivyReport(json: string | object): ParsedReport {
  let doc: TrivyReport;
  if (typeof json === 'string') {
    try {
      doc = JSON.parse(json) as TrivyReport;
    } catch (e) {
      throw new UpstreamError(`the Trivy report is not JSON: ${(e as Error).message}`);
    }
  } else doc = json as TrivyReport;
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new UpstreamError('the Trivy report is not a JSON object');
  if (doc.SchemaVersion !== 2)
    throw new UpstreamError(`the Trivy report has SchemaVersion ${JSON.stringify(doc.SchemaVersion)}; svcbuild reads schema 2`);
  if (doc.Results != null && !Array.isArray(doc.Results)) throw new UpstreamError('the Trivy report has Results that are not a list');

  const byKey = new Map<string, Finding>();
  for (const [ri, r] of (doc.Results ?? []).entries()) {
    const target = str(r.Target) ?? '';
    const klass = str(r.Class) ?? '';
    const type = str(r.Type) ?? '';
    if (r.Vulnerabilities != null && !Array.isArray(r.Vulnerabilities)) {
      throw new UpstreamError(`the Trivy report's Results[${ri}].Vulnerabilities is not a list`);
    }
    for (const [vi, v] of (r.Vulnerabilities ?? []).entries()) {
      const id = str(v.VulnerabilityID);
      const pkg = str(v.PkgName);
      const installed = typeof v.InstalledVersion === 'string' ? v.InstalledVersion : undefined;
      if (!id || !pkg || installed === undefined) {
        throw new UpstreamError(
          `the Trivy report's Results[${ri}].Vulnerabilities[${vi}] lacks VulnerabilityID, PkgName or InstalledVersion`,
        );
      }
      const path = str(v.PkgPath) ?? (klass === 'os-pkgs' ? `os:${type || 'unknown'}` : target);
      const f: Finding = {
        id,
        pkg,
        installed,
        severity: isSeverity(v.Severity) ? v.Severity : 'UNKNOWN',
        path,
        target,
        class: klass,
        type,
      };
      const fixed = str(v.FixedVersion);
      if (fixed) f.fixed = fixed;
      const title = str(v.Title);
      if (title) f.title = title;
      const url = str(v.PrimaryURL);
      if (url) f.url = url;
      const status = str(v.Status);
      if (status) f.status = status;
      const layer = str(v.Layer?.DiffID);
      if (layer) f.layer = layer;
      const key = findingKey(f);
      const prev = byKey.get(key);
      // The same key twice (Trivy can list one package under two targets): keep the highest severity.
      if (!prev || severityRank(f.severity) > severityRank(prev.severity)) byKey.set(key, f);
    }
  }
  const out: ParsedReport = {
    artifactName: str(doc.ArtifactName) ?? '',
    findings: [...byKey.values()].sort(compareFindings),
  };
  const family = str(doc.Metadata?.OS?.Family);
  if (family) out.os = { family, name: str(doc.Metadata?.OS?.Name) ?? '' };
  const version = str(doc.Trivy?.Version);
  if (version) out.trivyVersion = version;
  return out;
}
