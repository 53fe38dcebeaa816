/**
 * The scan step for real: Trivy (built from its Go module by scripts/install-trivy.sh) scans
 * the Python example's image by digest in a real registry, with an offline vulnerability DB
 * built by the test from tools/trivy-db-fixture and served from that registry. Nothing comes
 * from the internet.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { BuildError } from '../../src/errors.js';
import { RegistryClient } from '../../src/registry/client.js';
import { parseImageRef } from '../../src/registry/ref.js';
import { REPORT_ARTIFACT_TYPE, SBOM_ARTIFACT_TYPE, findAttached } from '../../src/scan/referrers.js';
import { parseTrivyReport } from '../../src/scan/report.js';
import { resolveScanSettings, type ScanSettings } from '../../src/scan/settings.js';
import { ScanGateError, scanStep, type ScanSummary } from '../../src/scan/step.js';
import { main as scanBase } from '../../src/cli/commands/scan-base.js';
import { main as scanCommand } from '../../src/scan/cli.js';
import { readFile } from 'node:fs/promises';
import { loadConfig } from '../../src/config/load.js';
import { ROOT, svcbuild } from '../helpers/cli.js';
import { HAVE_TRIVY, TRIVY, fixtureAdvisories, serveFixtureDb } from '../scan/fixture-db.js';

const registry = inject('registryHost');
let work: string;
let env: Record<string, string>;
let dbRepository: string;
let client: RegistryClient;
let built: { image: string; base: string };

const WERKZEUG = {
  id: 'CVE-2099-2001',
  pkg: 'Werkzeug',
  installed: '3.1.9',
  fixed: '3.1.10',
  severity: 'HIGH',
  path: 'project/the_venv/lib/python3.13/site-packages/werkzeug-3.1.9.dist-info/METADATA',
};
// glibc's advisory hits both binary packages of the source package Trivy looks it up by.
const LIBC_BIN = {
  id: 'CVE-2099-1001',
  pkg: 'libc-bin',
  installed: '2.41-12+deb13u4',
  fixed: '2.41-12+deb13u99',
  severity: 'HIGH',
  path: 'os:debian',
};
const LIBC6 = { ...LIBC_BIN, pkg: 'libc6' };
const URLLIB3 = {
  id: 'CVE-2099-2002',
  pkg: 'urllib3',
  installed: '2.5.0',
  fixed: '2.6.0',
  severity: 'MEDIUM',
  path: 'home/user/the_venv/lib/python3.13/site-packages/urllib3-2.5.0.dist-info/METADATA',
};
const pick = (f: { id: string; pkg: string; installed: string; fixed?: string; severity: string; path: string }) => ({
  id: f.id,
  pkg: f.pkg,
  installed: f.installed,
  fixed: f.fixed,
  severity: f.severity,
  path: f.path,
});

function settings(extra: Partial<ScanSettings> = {}): ScanSettings {
  return {
    ...resolveScanSettings(
      { trivyPath: TRIVY, dbRepository, cacheDir: join(work, 'trivy-cache') },
      { registryHost: registry, stateDir: work },
    ),
    ...extra,
  };
}

beforeAll(async () => {
  if (!HAVE_TRIVY) return;
  work = await mkdtemp(join(tmpdir(), 'svcbuild-scan-'));
  // The build itself does not scan here (scan.enabled: false); the test runs the step.
  await writeFile(join(work, 'config.yaml'), 'scan:\n  enabled: false\n');
  env = { SVCBUILD_REGISTRY: registry, SVCBUILD_STATE_DIR: join(work, 'state'), SVCBUILD_CONFIG: join(work, 'config.yaml') };
  client = new RegistryClient({ host: registry, plainHttp: true });
  dbRepository = await serveFixtureDb(registry, work);
  const res = await svcbuild(['build', join(ROOT, 'examples/python-hello'), '--json'], env);
  if (res.code !== 0) throw new Error(`svcbuild build failed (exit ${res.code}):\n${res.stderr}`);
  built = JSON.parse(res.stdout) as { image: string; base: string };
}, 1_800_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe.skipIf(!HAVE_TRIVY)(`scan step with trivy (${HAVE_TRIVY ? TRIVY : 'not built: run scripts/install-trivy.sh'})`, () => {
  let failed: ScanSummary;

  it('fails the gate at HIGH on the new werkzeug finding; the glibc one is inherited from the base', { timeout: 900_000 }, async () => {
    // GIVEN the Python example's image (werkzeug 3.1.9 added under /project) on the python base
    // (libc6 from glibc 2.41-12+deb13u4, urllib3 2.5.0 in the base venv), and a DB with
    // advisories for those three and one for flask < 3.1.1 (the image has flask 3.1.3)
    // WHEN the scan step runs with threshold HIGH
    const err = await scanStep({
      client,
      registry: { host: registry, plainHttp: true },
      settings: settings(),
      image: built.image,
      base: built.base,
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    // THEN it fails with a BuildError of step scan (exit 7, never retried) naming the finding
    expect(err).toBeInstanceOf(ScanGateError);
    expect(err).toBeInstanceOf(BuildError);
    const gateErr = err as ScanGateError;
    expect(gateErr.step).toBe('scan');
    expect(gateErr.exitCode).toBe(7);
    expect(gateErr.message).toContain(
      'HIGH CVE-2099-2001 Werkzeug 3.1.9 (fixed in 3.1.10) at project/the_venv/lib/python3.13/site-packages/werkzeug-3.1.9.dist-info/METADATA',
    );
    failed = gateErr.summary;
    // AND exactly one new finding (werkzeug), and exactly the base's findings as inherited
    expect(failed.gate).toBe('fail');
    expect(failed.blocking.map(pick)).toEqual([WERKZEUG]);
    expect(failed.counts.new).toEqual({ CRITICAL: 0, HIGH: 1, MEDIUM: 0, LOW: 0, UNKNOWN: 0 });
    expect(failed.counts.inherited).toEqual({ CRITICAL: 0, HIGH: 2, MEDIUM: 1, LOW: 0, UNKNOWN: 0 });
    // AND the base had no report yet: the step scanned it and attached one to it
    expect(failed.baseScanned).toBe(true);
    const baseRef = parseImageRef(built.base);
    const baseReport = await findAttached(client, baseRef.repo, baseRef.digest!, REPORT_ARTIFACT_TYPE);
    expect(baseReport?.descriptor.digest).toBe(failed.baseReport);
    const baseFindings = parseTrivyReport(baseReport!.content.toString('utf8')).findings.map(pick);
    expect(baseFindings).toEqual([LIBC_BIN, LIBC6, URLLIB3]);
  });

  it('attaches the full Trivy report and a CycloneDX SBOM to the image as referrers', async () => {
    // GIVEN the failed scan above WHEN the image's referrers are listed
    const ref = parseImageRef(built.image);
    const refs = await client.listReferrers(ref.repo, ref.digest!);
    // THEN the report and the SBOM are there, by the digests the summary names
    expect(refs.filter((d) => d.artifactType === REPORT_ARTIFACT_TYPE).map((d) => d.digest)).toContain(failed.report);
    expect(refs.filter((d) => d.artifactType === SBOM_ARTIFACT_TYPE).map((d) => d.digest)).toContain(failed.sbom);
    // AND the report is Trivy's, about this image by digest, with its four findings
    const report = await findAttached(client, ref.repo, ref.digest!, REPORT_ARTIFACT_TYPE);
    const parsed = parseTrivyReport(report!.content.toString('utf8'));
    expect(parsed.artifactName).toBe(built.image);
    expect(parsed.os).toEqual({ family: 'debian', name: expect.stringMatching(/^13\./) });
    expect(parsed.findings.map(pick)).toEqual([LIBC_BIN, LIBC6, WERKZEUG, URLLIB3]);
    // AND the SBOM is CycloneDX listing flask 3.1.3 and libc6 as components
    const sbom = JSON.parse((await findAttached(client, ref.repo, ref.digest!, SBOM_ARTIFACT_TYPE))!.content.toString('utf8')) as {
      bomFormat: string;
      components: Array<{ name: string; version: string; purl?: string }>;
    };
    expect(sbom.bomFormat).toBe('CycloneDX');
    expect(sbom.components.find((c) => c.name === 'Flask')?.purl).toBe('pkg:pypi/flask@3.1.3');
    expect(sbom.components.some((c) => c.name === 'libc6' && c.version === '2.41-12+deb13u4')).toBe(true);
  });

  it('passes with a live ignore entry, reuses the base report, and an expired entry ignores nothing', { timeout: 600_000 }, async () => {
    // GIVEN an ignore entry for the werkzeug finding, valid until 2099
    const ignore = [{ id: 'CVE-2099-2001', reason: 'fixture: not reachable in this service', expires: '2099-01-01' }];
    // WHEN the step runs again
    const summary = await scanStep({
      client,
      registry: { host: registry, plainHttp: true },
      settings: settings({ ignore }),
      image: built.image,
      base: built.base,
    });
    // THEN the gate passes, listing the finding as ignored with its reason
    expect(summary.gate).toBe('pass');
    expect(summary.blocking).toEqual([]);
    expect(summary.ignored.map((f) => [f.id, f.pkg, f.reason])).toEqual([
      ['CVE-2099-2001', 'Werkzeug', 'fixture: not reachable in this service'],
    ]);
    expect(summary.counts.new.HIGH).toBe(1);
    // AND the base report attached by the first run was reused, not rescanned
    expect(summary.baseScanned).toBe(false);
    expect(summary.baseReport).toBe(failed.baseReport);

    // GIVEN the same entry expired yesterday WHEN the step runs THEN it fails again, naming the expired entry
    const expired = [{ ...ignore[0]!, expires: '2026-01-01' }];
    const err = (await scanStep({
      client,
      registry: { host: registry, plainHttp: true },
      settings: settings({ ignore: expired }),
      image: built.image,
      base: built.base,
      now: new Date('2026-06-01T00:00:00Z'),
    }).catch((e: unknown) => e)) as ScanGateError;
    expect(err).toBeInstanceOf(ScanGateError);
    expect(err.summary.expiredIgnores).toEqual(expired);
    expect(err.summary.blocking.map((f) => f.id)).toEqual(['CVE-2099-2001']);
  });

  it('passes at CRITICAL: nothing new is that severe', { timeout: 600_000 }, async () => {
    const summary = await scanStep({
      client,
      registry: { host: registry, plainHttp: true },
      settings: settings({ threshold: 'CRITICAL' }),
      image: built.image,
      base: built.base,
    });
    expect(summary.gate).toBe('pass');
    expect(summary.threshold).toBe('CRITICAL');
    expect(summary.counts.new).toEqual({ CRITICAL: 0, HIGH: 1, MEDIUM: 0, LOW: 0, UNKNOWN: 0 });
  });

  it('svcbuild scan-base refreshes the base image report', { timeout: 600_000 }, async () => {
    // GIVEN the python base with the report the first scan attached
    const out: string[] = [];
    const err: string[] = [];
    const sink = (buf: string[]) =>
      ({ write: (c: string | Uint8Array) => (buf.push(String(c)), true) }) as unknown as NodeJS.WritableStream;
    await writeFile(join(work, 'scan-base.yaml'), `scan:\n  dbRepository: ${dbRepository}\n`);
    const config = await loadConfig({
      cwd: ROOT,
      env: { SVCBUILD_REGISTRY: registry, SVCBUILD_STATE_DIR: join(work, 'state'), SVCBUILD_CONFIG: join(work, 'scan-base.yaml') },
      home: ROOT,
    });
    // WHEN scan-base runs for it (trivy from install-trivy.sh, the fixture DB mirror)
    const code = await scanBase(['python-3.13', '--json'], {
      config: async () => config,
      stdout: sink(out),
      stderr: sink(err),
      home: ROOT,
    });
    // THEN it attached a new report to the same base image, with the base's findings
    expect(code, err.join('')).toBe(0);
    const [entry] = JSON.parse(out.join('')) as Array<{ name: string; image: string; report: string; counts: Record<string, number> }>;
    expect(entry!.name).toBe('python-3.13');
    expect(entry!.image).toBe(built.base);
    expect(entry!.counts).toEqual({ CRITICAL: 0, HIGH: 2, MEDIUM: 1, LOW: 0, UNKNOWN: 0 });
    expect(entry!.report).not.toBe(failed.baseReport);
    const ref = parseImageRef(built.base);
    expect((await findAttached(client, ref.repo, ref.digest!, REPORT_ARTIFACT_TYPE))?.descriptor.digest).toBe(entry!.report);
  });

  it('node-hello: the nanoid finding (MEDIUM) is new and passes the gate at HIGH, fails it at MEDIUM', { timeout: 900_000 }, async () => {
    // GIVEN the Node example built (nanoid 3.3.20 under /project/app/node_modules)
    const res = await svcbuild(['build', join(ROOT, 'examples/node-hello'), '--json'], env);
    expect(res.code, res.stderr).toBe(0);
    const node = JSON.parse(res.stdout) as { image: string; base: string };
    const input = { client, registry: { host: registry, plainHttp: true }, image: node.image, base: node.base };
    // WHEN it is scanned at HIGH THEN it passes, with nanoid counted as new and glibc as inherited
    const summary = await scanStep({ ...input, settings: settings() });
    expect(summary.gate).toBe('pass');
    expect(summary.counts).toEqual({
      new: { CRITICAL: 0, HIGH: 0, MEDIUM: 1, LOW: 0, UNKNOWN: 0 },
      inherited: { CRITICAL: 0, HIGH: 2, MEDIUM: 0, LOW: 0, UNKNOWN: 0 },
    });
    // AND at MEDIUM the nanoid finding blocks
    const err = (await scanStep({ ...input, settings: settings({ threshold: 'MEDIUM' }) }).catch((e: unknown) => e)) as ScanGateError;
    expect(err).toBeInstanceOf(ScanGateError);
    expect(err.summary.blocking.map(pick)).toEqual([
      {
        id: 'CVE-2099-3001',
        pkg: 'nanoid',
        installed: '3.3.20',
        fixed: '3.3.21',
        severity: 'MEDIUM',
        path: 'project/app/node_modules/nanoid/package.json',
      },
    ]);
  });

  it(
    'svcbuild scan (the step command) writes the summary output and fails with exit code 7 on the gate',
    { timeout: 600_000 },
    async () => {
      const out: string[] = [];
      const sink = (buf: string[]) =>
        ({ write: (c: string | Uint8Array) => (buf.push(String(c)), true) }) as unknown as NodeJS.WritableStream;
      // (scan.enabled auto: the step scans when its DB is in the registry, here the fixture's)
      await writeFile(join(work, 'scan-step.yaml'), `scan:\n  dbRepository: ${dbRepository}\n`);
      const config = await loadConfig({
        cwd: ROOT,
        env: { SVCBUILD_REGISTRY: registry, SVCBUILD_STATE_DIR: join(work, 'state'), SVCBUILD_CONFIG: join(work, 'scan-step.yaml') },
        home: ROOT,
      });
      const ctx = { config: async () => config, stdout: sink(out), stderr: sink([]), home: ROOT };
      const outputs = join(work, 'outputs');
      // WHEN the step command runs at HIGH THEN it throws the gate error (the CLI maps it to exit 7)
      const err = await scanCommand(['--image', built.image, '--base', built.base, '--outputs', outputs, '--json'], ctx).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ScanGateError);
      expect((err as ScanGateError).exitCode).toBe(7);
      // AND the summary is in the outputs and on stdout
      const summary = JSON.parse(await readFile(join(outputs, 'scan-summary'), 'utf8')) as ScanSummary;
      expect(summary.gate).toBe('fail');
      expect(summary.blocking.map(pick)).toEqual([WERKZEUG]);
      expect(JSON.parse(out.join(''))).toEqual(summary);
      // AND at CRITICAL it passes (exit 0)
      expect(await scanCommand(['--image', built.image, '--base', built.base, '--threshold', 'CRITICAL'], ctx)).toBe(0);
      // AND with no DB in the registry (scan.enabled auto) it reports itself skipped, exit 0
      const noDb = await loadConfig({
        cwd: ROOT,
        env: { SVCBUILD_REGISTRY: registry, SVCBUILD_STATE_DIR: join(work, 'state') },
        home: ROOT,
      });
      const skippedOut: string[] = [];
      const skipCtx = { config: async () => noDb, stdout: sink(skippedOut), stderr: sink([]), home: ROOT };
      const skipDir = join(work, 'outputs-skipped');
      expect(await scanCommand(['--image', built.image, '--base', built.base, '--outputs', skipDir, '--json'], skipCtx)).toBe(0);
      const skipped = { skipped: `skipped: no vulnerability DB at ${registry}/trivy-db:2 (mirror one there, or set scan.enabled: false)` };
      expect(JSON.parse(await readFile(join(skipDir, 'scan-summary'), 'utf8'))).toEqual(skipped);
      expect(JSON.parse(skippedOut.join(''))).toEqual(skipped);
    },
  );
});

describe.skipIf(!HAVE_TRIVY)('svcbuild build with the scan step', () => {
  it('reports the gate in --json: fails at HIGH on the new finding, passes with an ignore entry', { timeout: 900_000 }, async () => {
    // GIVEN a configuration that scans with the fixture DB
    const cfg = join(work, 'scan-on.yaml');
    await writeFile(cfg, `scan:\n  enabled: true\n  dbRepository: ${dbRepository}\n  cacheDir: ${join(work, 'trivy-cache-build')}\n`);
    const scanEnv = { ...env, SVCBUILD_CONFIG: cfg };
    // WHEN the Python example is built
    const res = await svcbuild(['build', join(ROOT, 'examples/python-hello'), '--json'], scanEnv);
    // THEN the build fails at the scan gate (exit 7), and --json still carries the summary
    expect(res.code, res.stderr).toBe(7);
    const out = JSON.parse(res.stdout);
    expect(out.error.step).toBe('scan');
    expect(out.scan.gate).toBe('fail');
    expect(out.scan.counts.new.HIGH).toBe(1);
    expect(out.scan.counts.inherited.HIGH).toBe(2);
    expect(out.steps.find((s: { name: string }) => s.name === 'scan').status).toBe('failed');
    // AND the failed build's unpromoted image tag was cleaned up
    const repo = parseImageRef(out.image).repo;
    expect(await client.listTags(repo)).not.toContain(`build-${out.id}`);
    // WHEN the werkzeug advisory is ignored, with a reason and an expiry in the future
    const advisory = (await fixtureAdvisories()).find((a) => a.package.toLowerCase() === 'werkzeug')!;
    await writeFile(
      cfg,
      `scan:\n  enabled: true\n  dbRepository: ${dbRepository}\n  cacheDir: ${join(work, 'trivy-cache-build')}\n  ignore:\n    - id: ${advisory.id}\n      reason: fixed upstream, upgrade scheduled\n      expires: "2999-01-01"\n`,
    );
    const ok = await svcbuild(['build', join(ROOT, 'examples/python-hello'), '--json'], scanEnv);
    // THEN the gate passes and the build publishes
    expect(ok.code, ok.stderr).toBe(0);
    const passed = JSON.parse(ok.stdout);
    expect(passed.scan.gate).toBe('pass');
    expect(passed.scan.ignored.map((f: { id: string }) => f.id)).toEqual([advisory.id]);
    expect(passed.chart.ref).toMatch(/charts\/local-python-hello$/);
    // AND the passing build is promoted: `latest` names it
    const m = await client.getManifest(parseImageRef(passed.image).repo, 'latest');
    expect(`@${m.digest}`).toBe(passed.image.slice(passed.image.indexOf('@')));
  });
});
