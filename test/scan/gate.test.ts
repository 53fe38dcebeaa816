/**
 * The gate on real Trivy reports of our images and their base images: what is new, what is
 * inherited, the threshold, and ignore entries with and without expiry.
 */
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { describeFinding, diffAgainstBase, expiryTime, gate, type IgnoreEntry } from '../../src/scan/gate.js';
import { parseTrivyReport, type Finding, type Severity } from '../../src/scan/report.js';
import { fixture, type FixtureName } from './fixtures.js';

const findings = (name: FixtureName): Finding[] => parseTrivyReport(fixture(name)).findings;
const brief = (fs: readonly Finding[]) => fs.map((f) => `${f.severity} ${f.id} ${f.pkg} ${f.installed}`);
const NOW = new Date('2026-06-01T12:00:00Z');
const zero = { CRITICAL: 0, HIGH: 0, MEDIUM: 0, LOW: 0, UNKNOWN: 0 };

describe('diffAgainstBase', () => {
  it('python-hello: werkzeug is new; glibc (libc6, libc-bin) and the base venv urllib3 are inherited', () => {
    const d = diffAgainstBase(findings('python-hello'), findings('base-python-3.13'));
    expect(brief(d.new)).toEqual(['HIGH CVE-2099-2001 Werkzeug 3.1.9']);
    expect(brief(d.inherited)).toEqual([
      'HIGH CVE-2099-1001 libc-bin 2.41-12+deb13u4',
      'HIGH CVE-2099-1001 libc6 2.41-12+deb13u4',
      'MEDIUM CVE-2099-2002 urllib3 2.5.0',
    ]);
  });

  it('node-hello: nanoid is new, glibc inherited', () => {
    const d = diffAgainstBase(findings('node-hello'), findings('base-node-22'));
    expect(brief(d.new)).toEqual(['MEDIUM CVE-2099-3001 nanoid 3.3.20']);
    expect(brief(d.inherited)).toEqual(['HIGH CVE-2099-1001 libc-bin 2.41-12+deb13u4', 'HIGH CVE-2099-1001 libc6 2.41-12+deb13u4']);
  });

  it('keys by id, package, installed version and path: any one differing makes a finding new', () => {
    const base = findings('base-python-3.13');
    const urllib3 = findings('python-hello').find((f) => f.pkg === 'urllib3')!;
    expect(diffAgainstBase([urllib3], base).inherited).toHaveLength(1);
    // the same package at another version (the service upgraded it, still vulnerable)
    expect(diffAgainstBase([{ ...urllib3, installed: '2.5.1' }], base).new).toHaveLength(1);
    // the same version installed again under /project
    expect(
      diffAgainstBase([{ ...urllib3, path: 'project/the_venv/lib/python3.13/site-packages/urllib3-2.5.0.dist-info/METADATA' }], base).new,
    ).toHaveLength(1);
    // another advisory for the same package
    expect(diffAgainstBase([{ ...urllib3, id: 'CVE-2099-9999' }], base).new).toHaveLength(1);
    // severity, fix and title are not part of the key (the DB may have re-rated it)
    expect(diffAgainstBase([{ ...urllib3, severity: 'CRITICAL', fixed: '2.7.0', title: 'x' }], base).inherited).toHaveLength(1);
  });

  it('a base without a report entry for the OS finding makes it new (the image added the package)', () => {
    const base = findings('base-python-3.13').filter((f) => f.pkg !== 'libc-bin');
    expect(brief(diffAgainstBase(findings('python-hello'), base).new)).toEqual([
      'HIGH CVE-2099-1001 libc-bin 2.41-12+deb13u4',
      'HIGH CVE-2099-2001 Werkzeug 3.1.9',
    ]);
  });
});

describe('gate', () => {
  const py = diffAgainstBase(findings('python-hello'), findings('base-python-3.13'));
  const node = diffAgainstBase(findings('node-hello'), findings('base-node-22'));

  it('fails at HIGH on the new werkzeug finding only; inherited HIGH findings never block', () => {
    const g = gate(py, { threshold: 'HIGH', now: NOW });
    expect(g.gate).toBe('fail');
    expect(g.threshold).toBe('HIGH');
    expect(brief(g.blocking)).toEqual(['HIGH CVE-2099-2001 Werkzeug 3.1.9']);
    expect(g.counts).toEqual({ new: { ...zero, HIGH: 1 }, inherited: { ...zero, HIGH: 2, MEDIUM: 1 } });
    expect(g.ignored).toEqual([]);
    expect(g.expiredIgnores).toEqual([]);
    expect(describeFinding(g.blocking[0]!)).toBe(
      'HIGH CVE-2099-2001 Werkzeug 3.1.9 (fixed in 3.1.10) at project/the_venv/lib/python3.13/site-packages/werkzeug-3.1.9.dist-info/METADATA',
    );
  });

  it('applies the threshold: at or above blocks, below does not', () => {
    const at = (threshold: Severity, d = py) => gate(d, { threshold, now: NOW }).gate;
    expect([at('UNKNOWN'), at('LOW'), at('MEDIUM'), at('HIGH'), at('CRITICAL')]).toEqual(['fail', 'fail', 'fail', 'fail', 'pass']);
    // node-hello's only new finding is MEDIUM
    expect([at('LOW', node), at('MEDIUM', node), at('HIGH', node)]).toEqual(['fail', 'fail', 'pass']);
    // counts do not depend on the threshold
    expect(gate(node, { threshold: 'CRITICAL', now: NOW }).counts).toEqual({
      new: { ...zero, MEDIUM: 1 },
      inherited: { ...zero, HIGH: 2 },
    });
  });

  it('an ignore entry without expiry lets the finding through, listed with its reason', () => {
    const ignore: IgnoreEntry[] = [{ id: 'CVE-2099-2001', reason: 'not reachable: we never call the debugger' }];
    const g = gate(py, { threshold: 'HIGH', ignore, now: NOW });
    expect(g.gate).toBe('pass');
    expect(g.blocking).toEqual([]);
    expect(g.ignored.map((f) => [f.id, f.pkg, f.reason, f.expires])).toEqual([
      ['CVE-2099-2001', 'Werkzeug', 'not reachable: we never call the debugger', undefined],
    ]);
    // counts still show the finding
    expect(g.counts.new.HIGH).toBe(1);
  });

  it('an ignore entry with a future expiry ignores; a past one stops ignoring and is reported', () => {
    const live: IgnoreEntry = { id: 'CVE-2099-2001', reason: 'waiting for 3.1.10 in our mirror', expires: '2026-06-30' };
    const ok = gate(py, { threshold: 'HIGH', ignore: [live], now: NOW });
    expect(ok.gate).toBe('pass');
    expect(ok.ignored.map((f) => [f.id, f.expires])).toEqual([['CVE-2099-2001', '2026-06-30']]);

    const expired: IgnoreEntry = { ...live, expires: '2026-05-31' };
    const ko = gate(py, { threshold: 'HIGH', ignore: [expired], now: NOW });
    expect(ko.gate).toBe('fail');
    expect(brief(ko.blocking)).toEqual(['HIGH CVE-2099-2001 Werkzeug 3.1.9']);
    expect(ko.ignored).toEqual([]);
    expect(ko.expiredIgnores).toEqual([expired]);
  });

  it('a date expiry lasts through that day (UTC); a timestamp expiry is exact', () => {
    const entry = (expires: string): IgnoreEntry[] => [{ id: 'CVE-2099-2001', reason: 'r', expires }];
    const at = (expires: string, now: string) => gate(py, { threshold: 'HIGH', ignore: entry(expires), now: new Date(now) }).gate;
    expect(at('2026-06-01', '2026-06-01T23:59:59Z')).toBe('pass');
    expect(at('2026-06-01', '2026-06-02T00:00:00Z')).toBe('fail');
    expect(at('2026-06-01T12:00:00Z', '2026-06-01T11:59:59Z')).toBe('pass');
    expect(at('2026-06-01T12:00:00Z', '2026-06-01T12:00:00Z')).toBe('fail');
    expect(expiryTime('2026-02-30')).toBeNaN();
    expect(expiryTime('June 1')).toBeNaN();
  });

  it('an entry restricted to another package does not ignore; one for the right package does', () => {
    const other = gate(py, { threshold: 'HIGH', ignore: [{ id: 'CVE-2099-2001', pkg: 'flask', reason: 'r' }], now: NOW });
    expect(other.gate).toBe('fail');
    const same = gate(py, { threshold: 'HIGH', ignore: [{ id: 'CVE-2099-2001', pkg: 'Werkzeug', reason: 'r' }], now: NOW });
    expect(same.gate).toBe('pass');
  });

  it('ignores only what would block: entries for inherited or below-threshold findings change nothing', () => {
    const g = gate(py, {
      threshold: 'HIGH',
      ignore: [
        { id: 'CVE-2099-1001', reason: 'inherited anyway' },
        { id: 'CVE-2099-2002', reason: 'medium' },
      ],
      now: NOW,
    });
    expect(g.gate).toBe('fail');
    expect(g.ignored).toEqual([]);
  });

  it('passes with no findings at all', () => {
    expect(gate({ new: [], inherited: [] }, { threshold: 'LOW', now: NOW })).toEqual({
      gate: 'pass',
      threshold: 'LOW',
      counts: { new: zero, inherited: zero },
      blocking: [],
      ignored: [],
      expiredIgnores: [],
    });
  });

  it('rejects an unknown threshold', () => {
    expect(() => gate(py, { threshold: 'SEVERE' as Severity, now: NOW })).toThrow(InputError);
  });
});
