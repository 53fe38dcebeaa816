import { describe, expect, it } from 'vitest';
import { chartVersionFor, mergeValues, renderServiceValues } from '../../src/chart/values.js';
import { chartRepositoryUrl, deployArgs, helmUpgradeArgs, parsePushDigest } from '../../src/chart/publish.js';
import { InputError } from '../../src/errors.js';

const D = (c: string) => `sha256:${c.repeat(64)}`;
const IMAGE = { repository: '127.0.0.1:5000/svcbuild/acme-shop', digest: D('1') };

describe('renderServiceValues', () => {
  it('fills the defaults of an image-mode build', () => {
    // GIVEN the minimum an image build knows
    // WHEN its values are rendered
    const v = renderServiceValues({ mode: 'image', image: IMAGE, port: 8080 });
    // THEN they are complete, with no base or overlay
    expect(v).toEqual({
      mode: 'image',
      image: IMAGE,
      imagePullSecrets: [],
      port: 8080,
      route: { kind: 'none', path: '/', hosts: [] },
      env: {},
      envFrom: [],
      resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '1', memory: '256Mi' } },
      replicas: 1,
      command: [],
      args: [],
      labels: {},
      podAnnotations: {},
    });
  });

  it('carries base and overlay in overlay mode and sorts env', () => {
    // GIVEN an overlay build
    const v = renderServiceValues({
      mode: 'overlay',
      image: IMAGE,
      base: { repository: '127.0.0.1:5000/svcbuild/base/node-22', digest: D('2') },
      overlay: { repository: IMAGE.repository, digest: D('3'), fetcherImage: 'fetcher@' + D('4') },
      port: 3000,
      env: { ZED: '1', ALPHA: '2' },
    });
    // THEN base and overlay are set with their defaults
    expect(v.base).toEqual({ repository: '127.0.0.1:5000/svcbuild/base/node-22', digest: D('2') });
    expect(v.overlay).toEqual({
      repository: IMAGE.repository,
      digest: D('3'),
      fetcherImage: 'fetcher@' + D('4'),
      fetcherCommand: [],
      pullSecret: '',
      plainHttp: false,
    });
    expect(Object.keys(v.env)).toEqual(['ALPHA', 'ZED']);
  });

  it('reports every bad field with its path in one InputError', () => {
    // GIVEN a request with many problems
    const bad = () =>
      renderServiceValues({
        mode: 'overlay',
        image: { repository: 'Bad Repo', digest: 'sha256:xyz' },
        port: 0,
        route: { kind: 'httproute', path: 'shop/', httproute: { parentRefs: [] } },
        env: { PORT: '1', 'BAD-NAME': 'x' },
        replicas: -1,
        resources: { limits: { memory: 'lots' } },
      });
    // WHEN rendered THEN one InputError lists them all
    expect(bad).toThrow(InputError);
    try {
      bad();
    } catch (e) {
      expect((e as InputError).issues.map((i) => i.path)).toEqual([
        'image.repository',
        'image.digest',
        'base',
        'overlay',
        'port',
        'route.path',
        'route.httproute.parentRefs',
        'env.PORT',
        'env.BAD-NAME',
        'resources.limits.memory',
        'replicas',
      ]);
    }
  });
});

describe('chartVersionFor', () => {
  it('makes a SemVer pre-release from a build id', () => {
    // GIVEN build ids WHEN versions are derived THEN they are valid SemVer 2 pre-releases
    expect(chartVersionFor('01HZX3K9')).toBe('0.1.0-build-01hzx3k9');
    expect(chartVersionFor('0042')).toBe('0.1.0-build-0042');
    expect(chartVersionFor('abc', '2.3.4')).toBe('2.3.4-build-abc');
  });

  it('rejects ids that cannot be part of a version', () => {
    // GIVEN an id with a dot and a plus WHEN a version is derived THEN InputError names buildId
    expect(() => chartVersionFor('a.b+c')).toThrow(/buildId: "a\.b\+c" must be 1 to 64 letters, digits or hyphens/);
    expect(() => chartVersionFor('')).toThrow(InputError);
  });
});

describe('helm argument lists', () => {
  it('deploys with helm 4 wait and rollback flags', () => {
    // GIVEN a published chart WHEN the deploy args are built THEN they are exactly these
    expect(helmUpgradeArgs('acme-shop', 'oci://r:5000/svcbuild/charts/acme-shop', '0.1.0-build-x', 'acme', '/tmp/v.yaml')).toEqual([
      'upgrade',
      '--install',
      'acme-shop',
      'oci://r:5000/svcbuild/charts/acme-shop',
      '--version',
      '0.1.0-build-x',
      '--namespace',
      'acme',
      '--rollback-on-failure',
      '--wait=watcher',
      '--timeout',
      '5m',
      '--values',
      '/tmp/v.yaml',
    ]);
    expect(
      deployArgs({ release: 'r', chartRef: 'oci://x/c/r', version: '1.0.0', namespace: 'n', timeout: '90s', plainHttp: true }).slice(-3),
    ).toEqual(['--timeout', '90s', '--plain-http']);
  });

  it('parses the digest helm push prints and builds the charts repository URL', () => {
    // GIVEN helm push output WHEN parsed THEN the digest comes out
    const out = `Pushed: 127.0.0.1:5000/svcbuild/charts/shop:0.1.0\nDigest: ${D('a')}\n`;
    expect(parsePushDigest(out)).toBe(D('a'));
    expect(parsePushDigest('Pushed: x')).toBeUndefined();
    expect(chartRepositoryUrl({ host: '127.0.0.1:5000', namespace: 'svcbuild' })).toBe('oci://127.0.0.1:5000/svcbuild/charts');
  });
});

describe('mergeValues', () => {
  it('merges maps key by key and replaces lists and scalars, like helm', () => {
    // GIVEN chart defaults and build values WHEN merged THEN maps merge, lists are replaced
    expect(mergeValues({ a: { x: 1, y: 2 }, l: [1, 2], s: 'd', keep: true }, { a: { y: 3 }, l: [9], s: 'o' })).toEqual({
      a: { x: 1, y: 3 },
      l: [9],
      s: 'o',
      keep: true,
    });
  });
});
