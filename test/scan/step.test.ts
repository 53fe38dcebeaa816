/**
 * scanStep against a real registry, with Trivy replaced by its recorded reports (the real
 * Trivy runs in test/slow/scan.test.ts): base report reuse per DB, referrers, the gate error.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BuildError, InputError } from '../../src/errors.js';
import { RegistryClient } from '../../src/registry/client.js';
import { REPORT_ARTIFACT_TYPE, SBOM_ARTIFACT_TYPE, findAttached } from '../../src/scan/referrers.js';
import { parseTrivyReport } from '../../src/scan/report.js';
import type { ScanSettings } from '../../src/scan/settings.js';
import { ScanGateError, scanStep, type ScanContext } from '../../src/scan/step.js';
import type { ScanImageOptions, ScanImageResult } from '../../src/scan/trivy.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { fixture, type FixtureName } from './fixtures.js';

let reg: TestRegistry;
let client: RegistryClient;
let image: string;
let base: string;

/** A stand-in image: any manifest can be the subject of referrers. */
async function pushImage(repo: string, marker: string): Promise<string> {
  const d = await client.pushArtifact({
    repo,
    artifactType: 'application/vnd.svcbuild.test.image',
    files: [{ mediaType: 'text/plain', bytes: Buffer.from(marker) }],
  });
  return `${reg.host}/${repo}@${d.digest}`;
}

beforeAll(async () => {
  reg = await startRegistry();
  client = new RegistryClient({ host: reg.host, plainHttp: true });
  base = await pushImage('svcbuild/base/python-3.13', 'base');
  image = await pushImage('svcbuild/local-python-hello', 'image');
});
afterAll(async () => {
  await reg?.stop();
});

const settings = (extra: Partial<ScanSettings> = {}): ScanSettings => ({
  enabled: true,
  threshold: 'HIGH',
  ignore: [],
  trivyPath: '/nonexistent/trivy',
  dbRepository: 'unused',
  cacheDir: '/nonexistent',
  timeoutSeconds: 60,
  ...extra,
});

/** A fake Trivy answering with the recorded report of each image, for a DB of `dbUpdatedAt`. */
function fakeTrivy(dbUpdatedAt: string, scanned: string[]): (o: ScanImageOptions) => Promise<ScanImageResult> {
  return async (o) => {
    scanned.push(o.image);
    const name: FixtureName = o.image === base ? 'base-python-3.13' : 'python-hello';
    const reportJson = fixture(name);
    return {
      report: parseTrivyReport(reportJson),
      reportJson,
      sbomJson: JSON.stringify({ bomFormat: 'CycloneDX', of: name }),
      db: { updatedAt: dbUpdatedAt },
    };
  };
}

const ctx = (scan: ScanContext['scan'], extra: Partial<ScanSettings> = {}) => ({
  client,
  registry: { host: reg.host, plainHttp: true },
  settings: settings(extra),
  scan,
  image,
  base,
});
const ACCEPT = [{ id: 'CVE-2099-2001', reason: 'accepted for the test' }];

describe('scanStep', () => {
  it('scans the base when it has no report, attaches it to the base, and gates the image', async () => {
    // GIVEN a base image without any report
    const scanned: string[] = [];
    // WHEN the step runs with the werkzeug finding accepted
    const s = await scanStep({ ...ctx(fakeTrivy('2026-11-01T00:00:00Z', scanned), { ignore: ACCEPT }) });
    // THEN it scanned the image, then the base
    expect(scanned).toEqual([image, base]);
    expect(s.baseScanned).toBe(true);
    expect(s.gate).toBe('pass');
    expect(s.counts).toEqual({
      new: { CRITICAL: 0, HIGH: 1, MEDIUM: 0, LOW: 0, UNKNOWN: 0 },
      inherited: { CRITICAL: 0, HIGH: 2, MEDIUM: 1, LOW: 0, UNKNOWN: 0 },
    });
    expect(s.scanner).toBe('trivy 0.74.0');
    // AND the base now has a report naming the DB it was made with
    const [baseRepo, baseDigest] = base.slice(reg.host.length + 1).split('@') as [string, string];
    const baseReport = await findAttached(client, baseRepo, baseDigest, REPORT_ARTIFACT_TYPE);
    expect(baseReport?.descriptor.digest).toBe(s.baseReport);
    expect(baseReport?.annotations['io.svcbuild.scan.db-updated-at']).toBe('2026-11-01T00:00:00Z');
    expect(baseReport?.content.toString('utf8')).toBe(fixture('base-python-3.13'));
    // AND the image has its report and its SBOM as referrers, by the digests of the summary
    const [repo, digest] = image.slice(reg.host.length + 1).split('@') as [string, string];
    const refs = await client.listReferrers(repo, digest);
    expect(refs.map((r) => [r.artifactType, r.digest]).sort()).toEqual(
      [
        [SBOM_ARTIFACT_TYPE, s.sbom],
        [REPORT_ARTIFACT_TYPE, s.report],
      ].sort(),
    );
    expect(JSON.parse((await findAttached(client, repo, digest, SBOM_ARTIFACT_TYPE))!.content.toString('utf8'))).toEqual({
      bomFormat: 'CycloneDX',
      of: 'python-hello',
    });
  });

  it('reuses the base report made with the same DB, and rescans the base when the DB changed', async () => {
    const same: string[] = [];
    const first = await scanStep({ ...ctx(fakeTrivy('2026-11-01T00:00:00Z', same), { ignore: ACCEPT }) });
    expect(same).toEqual([image]);
    expect(first.baseScanned).toBe(false);

    const newer: string[] = [];
    const second = await scanStep({ ...ctx(fakeTrivy('2026-11-02T00:00:00Z', newer), { ignore: ACCEPT }) });
    expect(newer).toEqual([image, base]);
    expect(second.baseScanned).toBe(true);
    expect(second.baseReport).not.toBe(first.baseReport);
  });

  it('fails the gate with a BuildError of step scan (exit 7) listing the blocking finding, reports attached', async () => {
    const err = await scanStep(ctx(fakeTrivy('2026-11-02T00:00:00Z', []))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ScanGateError);
    expect(err).toBeInstanceOf(BuildError);
    const e = err as ScanGateError;
    expect([e.step, e.exitCode, e.code]).toEqual(['scan', 7, 'build_failed']);
    expect(e.message).toBe(
      'the scan gate failed: 1 new finding at or above HIGH that the base image does not have:\n' +
        '  - HIGH CVE-2099-2001 Werkzeug 3.1.9 (fixed in 3.1.10) at project/the_venv/lib/python3.13/site-packages/werkzeug-3.1.9.dist-info/METADATA\n' +
        'update the dependency, or accept a finding with a scan.ignore entry (id, reason, expires)',
    );
    expect(e.details).toBe(e.summary);
    const [repo, digest] = image.slice(reg.host.length + 1).split('@') as [string, string];
    expect((await client.listReferrers(repo, digest, REPORT_ARTIFACT_TYPE)).map((d) => d.digest)).toContain(e.summary.report);
  });

  it('refuses an image in another registry or not by digest', async () => {
    const scan = fakeTrivy('x', []);
    await expect(scanStep({ ...ctx(scan), image: image.replace(reg.host, 'registry.example:5000') })).rejects.toThrow(InputError);
    await expect(scanStep({ ...ctx(scan), base: `${reg.host}/svcbuild/base/python-3.13:latest` })).rejects.toThrow(
      /not a reference by digest/,
    );
  });
});
