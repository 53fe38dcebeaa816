/**
 * parseTrivyReport on reports Trivy 0.74.0 really wrote (test/scan/fixtures, scans of our
 * images with the fixture DB of tools/trivy-db-fixture; package lists trimmed to 3 entries).
 */
import { describe, expect, it } from 'vitest';
import { UpstreamError } from '../../src/errors.js';
import { countBySeverity, findingKey, parseTrivyReport } from '../../src/scan/report.js';
import { fixture } from './fixtures.js';

const PY_IMAGE = '127.0.0.1:5000/svcbuild/local-python-hello@sha256:300cc587713514e0434f46836cc8d0f7d34094dca1000da279fbdf1ea2a2e9d2';

describe('parseTrivyReport', () => {
  it('reads every finding of a real report, OS and language packages, highest severity first', () => {
    // GIVEN Trivy's JSON report of the python-hello image
    const r = parseTrivyReport(fixture('python-hello'));
    // THEN it names the image, its OS and the Trivy version
    expect(r.artifactName).toBe(PY_IMAGE);
    expect(r.os).toEqual({ family: 'debian', name: '13.7' });
    expect(r.trivyVersion).toBe('0.74.0');
    // AND lists the four findings by (severity, id, package, path)
    expect(r.findings.map((f) => [f.severity, f.id, f.pkg, f.installed, f.fixed, f.path])).toEqual([
      ['HIGH', 'CVE-2099-1001', 'libc-bin', '2.41-12+deb13u4', '2.41-12+deb13u99', 'os:debian'],
      ['HIGH', 'CVE-2099-1001', 'libc6', '2.41-12+deb13u4', '2.41-12+deb13u99', 'os:debian'],
      [
        'HIGH',
        'CVE-2099-2001',
        'Werkzeug',
        '3.1.9',
        '3.1.10',
        'project/the_venv/lib/python3.13/site-packages/werkzeug-3.1.9.dist-info/METADATA',
      ],
      [
        'MEDIUM',
        'CVE-2099-2002',
        'urllib3',
        '2.5.0',
        '2.6.0',
        'home/user/the_venv/lib/python3.13/site-packages/urllib3-2.5.0.dist-info/METADATA',
      ],
    ]);
  });

  it('keeps the target, class, type, title, url, status and layer of a finding', () => {
    const werkzeug = parseTrivyReport(fixture('python-hello')).findings.find((f) => f.id === 'CVE-2099-2001');
    expect(werkzeug).toEqual({
      id: 'CVE-2099-2001',
      pkg: 'Werkzeug',
      installed: '3.1.9',
      fixed: '3.1.10',
      severity: 'HIGH',
      path: 'project/the_venv/lib/python3.13/site-packages/werkzeug-3.1.9.dist-info/METADATA',
      target: 'Python',
      class: 'lang-pkgs',
      type: 'python-pkg',
      title: 'werkzeug: fixture advisory for the version python-hello installs',
      url: 'https://avd.aquasec.com/nvd/cve-2099-2001',
      status: 'fixed',
      layer: 'sha256:9032778dcdb917b56488e9cf763600ae1da7f3a74897186db70882ed0d9cfd62',
    });
    // An OS finding's target names the image; its path does not, so base and image compare equal.
    const libc6 = parseTrivyReport(fixture('python-hello')).findings.find((f) => f.pkg === 'libc6')!;
    expect(libc6.target).toBe(`${PY_IMAGE} (debian 13.7)`);
    expect(libc6.path).toBe('os:debian');
    expect([libc6.class, libc6.type]).toEqual(['os-pkgs', 'debian']);
  });

  it('reads the node reports: nanoid under /project, nothing in the base node_modules', () => {
    const node = parseTrivyReport(fixture('node-hello'));
    expect(node.findings.map((f) => [f.severity, f.id, f.pkg, f.installed, f.path])).toEqual([
      ['HIGH', 'CVE-2099-1001', 'libc-bin', '2.41-12+deb13u4', 'os:debian'],
      ['HIGH', 'CVE-2099-1001', 'libc6', '2.41-12+deb13u4', 'os:debian'],
      ['MEDIUM', 'CVE-2099-3001', 'nanoid', '3.3.20', 'project/app/node_modules/nanoid/package.json'],
    ]);
    expect(countBySeverity(parseTrivyReport(fixture('base-node-22')).findings)).toEqual({
      CRITICAL: 0,
      HIGH: 2,
      MEDIUM: 0,
      LOW: 0,
      UNKNOWN: 0,
    });
  });

  it('reads a report with no findings (Results without Vulnerabilities, or none at all)', () => {
    const doc = JSON.parse(fixture('python-hello')) as { Results: Array<{ Vulnerabilities?: unknown }> };
    for (const r of doc.Results) delete r.Vulnerabilities;
    expect(parseTrivyReport(doc).findings).toEqual([]);
    expect(parseTrivyReport({ SchemaVersion: 2, ArtifactName: 'x' }).findings).toEqual([]);
  });

  it('treats an unknown severity as UNKNOWN and keeps one finding per key (the most severe)', () => {
    const doc = JSON.parse(fixture('python-hello')) as { Results: Array<{ Vulnerabilities: Array<Record<string, unknown>> }> };
    const py = doc.Results[1]!;
    py.Vulnerabilities.push({ ...py.Vulnerabilities[1]!, Severity: 'CRITICAL' });
    doc.Results[0]!.Vulnerabilities[0]!.Severity = 'SEVERE';
    const r = parseTrivyReport(doc);
    expect(r.findings.filter((f) => f.pkg === 'urllib3').map((f) => f.severity)).toEqual(['CRITICAL']);
    expect(r.findings.find((f) => f.pkg === 'libc-bin')!.severity).toBe('UNKNOWN');
    expect(new Set(r.findings.map(findingKey)).size).toBe(r.findings.length);
  });

  it('rejects what is not a Trivy schema 2 report, saying why', () => {
    expect(() => parseTrivyReport('{"SchemaVersion": 1}')).toThrow(
      new UpstreamError('the Trivy report has SchemaVersion 1; svcbuild reads schema 2'),
    );
    expect(() => parseTrivyReport('not json')).toThrow(/the Trivy report is not JSON/);
    expect(() => parseTrivyReport('[]')).toThrow('the Trivy report is not a JSON object');
    expect(() => parseTrivyReport({ SchemaVersion: 2, Results: [{ Vulnerabilities: [{ PkgName: 'x', InstalledVersion: '1' }] }] })).toThrow(
      "the Trivy report's Results[0].Vulnerabilities[0] lacks VulnerabilityID, PkgName or InstalledVersion",
    );
  });
});
