import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publishServiceChart } from '../../src/chart/publish.js';
import { chartVersionFor, renderServiceValues } from '../../src/chart/values.js';
import { InputError, UpstreamError } from '../../src/errors.js';
import { runOk } from '../../src/util/exec.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { SERVICE_CHART, one, parseManifests } from './helm.js';

const DIGEST = `sha256:${'5'.repeat(64)}`;

describe('publishServiceChart against a real registry', () => {
  let registry: TestRegistry;
  let work: string;
  beforeAll(async () => {
    registry = await startRegistry();
    work = await mkdtemp(join(tmpdir(), 'svcbuild-publish-test-'));
  });
  afterAll(async () => {
    await registry?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('pushes the chart with the build values, and helm pulls and renders it back', async () => {
    // GIVEN the values of a build and a local registry
    const values = renderServiceValues({
      mode: 'image',
      image: { repository: `${registry.host}/svcbuild/acme-shop`, digest: DIGEST },
      port: 8080,
      route: { kind: 'ingress', path: '/shop' },
    });
    const version = chartVersionFor('b1');
    // WHEN the chart is published
    const chart = await publishServiceChart({
      chartSrcDir: SERVICE_CHART,
      values,
      name: 'acme-shop',
      version,
      registry: { host: registry.host, plainHttp: true, namespace: 'svcbuild' },
      workDir: join(work, 'publish'),
    });
    // THEN it is in the registry under that digest
    expect(chart.ref).toBe(`oci://${registry.host}/svcbuild/charts/acme-shop`);
    expect(chart.version).toBe('0.1.0-build-b1');
    const res = await fetch(`http://${registry.host}/v2/svcbuild/charts/acme-shop/manifests/${version}`, {
      headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('docker-content-digest')).toBe(chart.digest);
    const manifest = (await res.json()) as { config: { mediaType: string } };
    expect(manifest.config.mediaType).toBe('application/vnd.cncf.helm.config.v1+json');

    // AND helm pulls it back and renders the build's image with no extra values
    const pulled = join(work, 'pulled');
    await runOk('helm', ['pull', chart.ref, '--version', chart.version, '--plain-http', '--untar', '--destination', pulled]);
    const out = await runOk('helm', ['template', 'acme-shop', join(pulled, 'acme-shop'), '--namespace', 'acme']);
    const manifests = parseManifests(out.stdout);
    const dep = one(manifests, 'Deployment', 'acme-shop');
    expect(dep.spec.template.spec.containers[0].image).toBe(`${registry.host}/svcbuild/acme-shop@${DIGEST}`);
    expect(dep.metadata.labels!['helm.sh/chart']).toBe('acme-shop-0.1.0-build-b1');
    expect(dep.metadata.labels!['app.kubernetes.io/version']).toBe('0.1.0-build-b1');
    expect(one(manifests, 'Ingress', 'acme-shop').spec.rules[0].http.paths[0].path).toBe('/shop');
  });

  it('fails with helm lint words when the values break the chart schema', async () => {
    // GIVEN values with a bad digest (bypassing renderServiceValues)
    const values = {
      mode: 'image',
      image: { repository: `${registry.host}/svcbuild/x`, digest: 'sha256:nope' },
      port: 8080,
      route: { kind: 'none', path: '/' },
      replicas: 1,
    };
    // WHEN published THEN helm lint's schema error comes back as an UpstreamError
    const p = publishServiceChart({
      chartSrcDir: SERVICE_CHART,
      values,
      name: 'x',
      version: '0.1.0',
      registry: { host: registry.host, plainHttp: true, namespace: 'svcbuild' },
      workDir: join(work, 'bad'),
    });
    await expect(p).rejects.toThrow(UpstreamError);
    await expect(p).rejects.toThrow(/at '\/image\/digest': 'sha256:nope' does not match pattern/);
  });

  it('refuses a bad name, version or plain HTTP to a remote registry before running helm', async () => {
    // GIVEN bad inputs WHEN published THEN one InputError names them all
    const p = publishServiceChart({
      chartSrcDir: SERVICE_CHART,
      values: {},
      name: 'Acme_Shop',
      version: '1.0',
      registry: { host: 'registry.example.com', plainHttp: true, namespace: 'svcbuild' },
      workDir: join(work, 'never'),
    });
    await expect(p).rejects.toThrow(InputError);
    await expect(p).rejects.toThrow(
      /name: "Acme_Shop" must be lower-case[^\n]*\n {2}- version: "1\.0" is not a SemVer[^\n]*\n {2}- registry\.plainHttp: plain HTTP is only allowed for a registry on loopback or a private IP address \(10\/8, 172\.16\/12, 192\.168\/16, fc00::\/7\), not registry\.example\.com; use TLS/,
    );
  });
});
