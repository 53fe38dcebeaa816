/**
 * ArgoBuildExecutor (the API's Executor on Argo) against a real kube-apiserver + etcd with
 * Argo's CRDs (test/helpers/kube.ts) and a real registry (test/helpers/registry.ts).
 *
 * There is no Argo controller (and no node) here: to see a build run, fail or succeed, the
 * tests patch the Workflow's status through the real apiserver the way the controller writes
 * it (status.phase, status.nodes with a displayName per step, status.outputs.parameters).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { CoreV1Api, CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../../src/api/app.js';
import { TokenStore } from '../../../src/api/tokens.js';
import { parseConfig, type Config } from '../../../src/config/schema.js';
import type { Submission } from '../../../src/executors/executor.js';
import { applyObjects } from '../../../src/executors/argo/index.js';
import { ArgoBuildExecutor, recordOf } from '../../../src/executors/argo/build-executor.js';
import { ConflictError, InputError, NotFoundError } from '../../../src/errors.js';
import { RegistryClient } from '../../../src/registry/client.js';
import { MEDIA_TYPES } from '../../../src/registry/types.js';
import { renderWorkflowTemplates } from '../../../src/render/index.js';
import { createExecutor } from '../../../src/server.js';
import { startKube, type TestKube } from '../../helpers/kube.js';
import { startRegistry, type TestRegistry } from '../../helpers/registry.js';

const NS = 'svcbuild-builds';
const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;
const ARCHIVE_INFO = { type: 'archive' as const, format: 'tar.gz', sha256: 'a'.repeat(64), files: 2, bytes: 80 };

describe('ArgoBuildExecutor on a real kube-apiserver and registry', () => {
  let kube: TestKube;
  let reg: TestRegistry;
  let kc: KubeConfig;
  let custom: CustomObjectsApi;
  let core: CoreV1Api;
  let config: Config;
  let executor: ArgoBuildExecutor;
  let client: RegistryClient;
  let baseDigest: string;
  let work: string;

  /** A fresh copy of a small python project, as the API hands an extracted upload over. */
  const project = async (files: Record<string, string> = {}): Promise<string> => {
    const dir = await mkdtemp(join(work, 'project-'));
    const all = {
      'pyproject.toml': '[project]\nname = "orders"\nrequires-python = ">=3.11"\ndependencies = []\n',
      'app.py': 'print(1)\n',
      ...files,
    };
    for (const [name, body] of Object.entries(all)) {
      await mkdir(dirname(join(dir, name)), { recursive: true });
      await writeFile(join(dir, name), body);
    }
    return dir;
  };
  const archive = async (tenant = 'acme', idempotencyKey?: string, files?: Record<string, string>): Promise<Submission> => ({
    tenant,
    spec: {},
    source: { type: 'archive', dir: await project(files), info: ARCHIVE_INFO },
    ...(idempotencyKey !== undefined ? { idempotencyKey } : {}),
  });
  const workflowsOf = async (selector: string) =>
    (
      (await custom.listNamespacedCustomObject({
        group: 'argoproj.io',
        version: 'v1alpha1',
        namespace: NS,
        plural: 'workflows',
        labelSelector: selector,
      })) as { items: any[] }
    ).items;
  /** Writes a status as Argo's controller does (the Workflow CRD has no status subresource). */
  const setStatus = (name: string, status: object) =>
    custom.patchNamespacedCustomObject(
      { group: 'argoproj.io', version: 'v1alpha1', namespace: NS, plural: 'workflows', name, body: { status } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  const node = (wf: string, i: number, step: string, phase: string, extra: object = {}) => ({
    id: `${wf}-${i}`,
    name: `${wf}[${i}].${step}`,
    displayName: step,
    type: 'Pod',
    phase,
    templateName: step,
    ...extra,
  });

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'svcbuild-argo-exec-'));
    [kube, reg] = await Promise.all([startKube(), startRegistry()]);
    kc = new KubeConfig();
    kc.loadFromFile(kube.kubeconfig);
    core = kc.makeApiClient(CoreV1Api);
    for (const name of [NS, 'tenant-acme']) await core.createNamespace({ body: { metadata: { name } } });
    custom = kc.makeApiClient(CustomObjectsApi);
    config = parseConfig({ registry: { host: reg.host }, executor: { kind: 'argo', buildNamespace: NS } });
    client = new RegistryClient({ host: reg.host, plainHttp: true });
    executor = new ArgoBuildExecutor({ config, kubeConfig: kc });
  }, 1_800_000);
  afterAll(async () => {
    await kube?.stop();
    await reg?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('GIVEN config WHEN executor.kind is argo THEN createExecutor builds the argo executor; a template without {tenant} is refused', () => {
    expect(parseConfig({}).executor).toEqual({
      kind: 'local',
      buildNamespace: 'svcbuild-builds',
      tenantNamespace: 'tenant-{tenant}',
      tenantConcurrency: 2,
    });
    const kubeconfig = kube.kubeconfig;
    const made = createExecutor(parseConfig({ executor: { kind: 'argo', kubeconfig } }), '/nonexistent');
    expect(made).toBeInstanceOf(ArgoBuildExecutor);
    expect(made.name).toBe('argo');
    expect(createExecutor(parseConfig({}), '/nonexistent').name).toBe('local');
    let err: InputError | undefined;
    try {
      parseConfig({ executor: { tenantNamespace: 'tenants' } });
    } catch (e) {
      err = e as InputError;
    }
    expect(err).toBeInstanceOf(InputError);
    expect(err?.issues).toEqual([{ path: 'config.executor.tenantNamespace', message: 'must contain {tenant}, e.g. tenant-{tenant}' }]);
  });

  it('GIVEN no WorkflowTemplate WHEN asked THEN not ready; once installed THEN ready', async () => {
    expect(await executor.ready()).toBe(false);
    const templates = renderWorkflowTemplates({
      stepImage: 'r/svcbuild:1',
      builder: { kanikoImage: 'r/kaniko:1', buildahImage: 'r/svcbuild:1' },
    });
    expect(await applyObjects(kc, templates, NS)).toContain('WorkflowTemplate/svcbuild-build');
    expect(await executor.ready()).toBe(true);
  });

  it('GIVEN no base image tagged current WHEN an archive is submitted THEN InputError tells the operator to push base images', async () => {
    const err = (await executor.submit(await archive()).catch((e: unknown) => e)) as InputError;
    expect(err).toBeInstanceOf(InputError);
    expect(err.issues).toEqual([
      {
        path: 'spec.base',
        message: `${reg.host}/svcbuild/base/python-3.13:current does not exist: the operator must build and push the base images (tag current) first`,
      },
    ]);
    expect(await workflowsOf('svcbuild.io/tenant=acme')).toEqual([]);
  });

  it('GIVEN an invalid project name WHEN submitted THEN InputError like the local executor and no Workflow', async () => {
    const s = await archive('acme', undefined, { 'pyproject.toml': '[project]\nname = "9"\ndependencies = []\n' });
    const err = (await executor.submit({ ...s, spec: { name: 'Bad_Name' } }).catch((e: unknown) => e)) as InputError;
    expect(err).toBeInstanceOf(InputError);
    expect(err.issues.map((i) => i.path)).toEqual(['spec.name']);
  });

  describe('with the base image pushed as :current', () => {
    let id: string;

    beforeAll(async () => {
      const pushed = await client.pushArtifact({
        repo: 'svcbuild/base/python-3.13',
        artifactType: 'application/vnd.svcbuild.test.base.v1',
        files: [{ mediaType: MEDIA_TYPES.ociLayerGzip, bytes: Buffer.from('base') }],
        tag: 'current',
      });
      baseDigest = pushed.digest;
    });

    it('GIVEN an archive WHEN submitted THEN exactly one Workflow with the pushed source, the base by digest and tenant labels', async () => {
      const { record, created } = await executor.submit(await archive());
      expect(created).toBe(true);
      id = record.id;
      const wfs = await workflowsOf('svcbuild.io/tenant=acme');
      expect(wfs.map((w) => w.metadata.name)).toEqual([id]);
      const wf = wfs[0];
      const params = Object.fromEntries(
        (wf.spec.arguments.parameters as Array<{ name: string; value: string }>).map((p) => [p.name, p.value]),
      );
      const sourceRef = params['source-ref']!;
      const [repoPart, digest] = sourceRef.split('@');
      expect(repoPart).toBe(`${reg.host}/svcbuild/acme-orders`);
      expect(digest).toMatch(DIGEST_RE);
      const buildId = id.slice('acme-orders-'.length);
      expect(id).toMatch(/^acme-orders-[0-9a-f]{12}$/);
      expect(params).toEqual({
        tenant: 'acme',
        service: 'orders',
        'build-id': buildId,
        language: 'python',
        'source-kind': 'archive',
        'source-ref': sourceRef,
        'git-url': '',
        'git-ref': '',
        'git-subdir': '',
        base: 'python-3.13',
        'base-ref': `${reg.host}/svcbuild/base/python-3.13@${baseDigest}`,
        'image-repo': `${reg.host}/svcbuild/acme-orders`,
        namespace: 'tenant-acme',
        'chart-values': '{"port":8080}',
        'scan-threshold': 'HIGH',
      });
      expect(wf.metadata.labels).toEqual({
        'svcbuild.io/tenant': 'acme',
        'svcbuild.io/service': 'orders',
        'svcbuild.io/build-id': buildId,
        'svcbuild.io/language': 'python',
        'svcbuild.io/kind': 'service-build',
      });
      expect(wf.spec.workflowTemplateRef).toEqual({ name: 'svcbuild-build' });
      // THEN the tenant's semaphore key was added first (the ConfigMap did not exist)
      expect((await core.readNamespacedConfigMap({ name: 'svcbuild-concurrency', namespace: NS })).data).toEqual({ acme: '2' });
      // THEN the source artifact is in the registry, one tar.gz layer
      const manifest = await client.getManifest('svcbuild/acme-orders', digest!);
      expect((manifest.json as any).artifactType).toBe('application/vnd.svcbuild.source.v1');
      expect((manifest.json as any).layers.map((l: any) => l.mediaType)).toEqual([MEDIA_TYPES.ociLayerGzip]);
      // THEN the record is queued, with the request and the upload as given
      expect(record).toMatchObject({
        id,
        tenant: 'acme',
        status: 'queued',
        spec: {},
        source: ARCHIVE_INFO,
        name: 'orders',
        service: 'acme-orders',
        kind: 'python',
        base: `${reg.host}/svcbuild/base/python-3.13@${baseDigest}`,
        attempts: 1,
      });
      expect(record.steps.map((s) => `${s.name}:${s.status}`)).toEqual([
        'source:pending',
        'build:pending',
        'scan:pending',
        'overlay:pending',
        'publish:pending',
        'deploy:pending',
      ]);
    });

    it('GIVEN an operator value for one tenant WHEN another tenant submits THEN its key is added and the value kept', async () => {
      await core.patchNamespacedConfigMap(
        { name: 'svcbuild-concurrency', namespace: NS, body: { data: { acme: '4' } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      const other = new ArgoBuildExecutor({
        config: parseConfig({ registry: { host: reg.host }, executor: { kind: 'argo', buildNamespace: NS, tenantConcurrency: 3 } }),
        kubeConfig: kc,
      });
      expect((await other.submit(await archive('beta'))).created).toBe(true);
      expect((await core.readNamespacedConfigMap({ name: 'svcbuild-concurrency', namespace: NS })).data).toEqual({ acme: '4', beta: '3' });
    });

    it('GIVEN the same Idempotency-Key WHEN submitted twice THEN one Workflow', async () => {
      const a = await executor.submit(await archive('acme', 'key-1'));
      const b = await executor.submit(await archive('acme', 'key-1', { 'app.py': 'print(2)\n' }));
      expect([a.created, b.created]).toEqual([true, false]);
      expect(b.record.id).toBe(a.record.id);
      expect((await workflowsOf(`svcbuild.io/build-id=${a.record.id.slice('acme-orders-'.length)}`)).length).toBe(1);
      expect((await workflowsOf('svcbuild.io/tenant=acme')).length).toBe(2);
    });

    it('GIVEN a Workflow the controller ran to success WHEN got and listed THEN a BuildRecord with steps and outputs', async () => {
      const t0 = '2026-01-01T00:00:00Z';
      const t1 = '2026-01-01T00:00:10Z';
      const imageDigest = `sha256:${'1'.repeat(64)}`;
      const overlayDigest = `sha256:${'2'.repeat(64)}`;
      const chartDigest = `sha256:${'3'.repeat(64)}`;
      const steps = ['source', 'build', 'scan', 'overlay', 'publish', 'deploy'];
      await setStatus(id, {
        phase: 'Succeeded',
        startedAt: t0,
        finishedAt: t1,
        nodes: Object.fromEntries(steps.map((s, i) => [`${id}-${i}`, node(id, i, s, 'Succeeded', { startedAt: t0, finishedAt: t1 })])),
        outputs: {
          parameters: [
            { name: 'image-digest', value: imageDigest },
            { name: 'overlay-digest', value: overlayDigest },
            { name: 'chart-ref', value: `oci://${reg.host}/svcbuild/charts/acme-orders:0.1.0@${chartDigest}` },
          ],
        },
      });
      const rec = await executor.get('acme', id);
      expect(rec.status).toBe('succeeded');
      expect(rec.startedAt).toBe(t0);
      expect(rec.finishedAt).toBe(t1);
      expect(rec.steps).toEqual(steps.map((name) => ({ name, status: 'succeeded', seconds: 10 })));
      expect(rec.image).toBe(`${reg.host}/svcbuild/acme-orders@${imageDigest}`);
      expect(rec.overlay).toEqual({ digest: overlayDigest, bytes: 0, ref: `${reg.host}/svcbuild/acme-orders@${overlayDigest}` });
      expect(rec.chart).toEqual({ ref: `oci://${reg.host}/svcbuild/charts/acme-orders`, version: '0.1.0', digest: chartDigest });
      expect(rec.error).toBeUndefined();
      expect((await executor.list('acme', { status: 'succeeded' })).map((r) => r.id)).toEqual([id]);
      expect((await executor.list('acme', { service: 'orders' })).length).toBe(2);
      expect((await executor.list('acme', { service: 'acme-orders', status: 'queued' })).length).toBe(1);
      expect(await executor.list('acme', { service: 'other' })).toEqual([]);
      expect(await executor.list('globex', {})).toEqual([]);
    });

    it('GIVEN another tenant WHEN it gets, cancels or retries the build THEN not found', async () => {
      await expect(executor.get('globex', id)).rejects.toBeInstanceOf(NotFoundError);
      await expect(executor.cancel('globex', id)).rejects.toBeInstanceOf(NotFoundError);
      await expect(executor.retry('globex', id)).rejects.toBeInstanceOf(NotFoundError);
      await expect(executor.get('acme', 'no-such-build')).rejects.toBeInstanceOf(NotFoundError);
      await expect(executor.get('acme', '../etc')).rejects.toBeInstanceOf(NotFoundError);
    });

    it('GIVEN a failed step WHEN got THEN the error names the step and its message; retry makes a new Workflow', async () => {
      const { record } = await executor.submit(await archive('acme', 'key-fail'));
      const name = record.id;
      await setStatus(name, {
        phase: 'Failed',
        message: 'child failed',
        nodes: {
          a: node(name, 0, 'source', 'Succeeded'),
          b: node(name, 1, 'build', 'Failed', { message: 'uv: no solution for flask>=99' }),
        },
      });
      const rec = await executor.get('acme', name);
      expect(rec.status).toBe('failed');
      expect(rec.error).toEqual({ step: 'build', code: 'build_failed', message: 'uv: no solution for flask>=99' });
      expect(rec.steps.map((s) => s.status)).toEqual(['succeeded', 'failed', 'skipped', 'skipped', 'skipped', 'skipped']);
      const retried = await executor.retry('acme', name);
      expect(retried.id).toBe(`${name}-r1`);
      expect(retried.retryOf).toBe(name);
      expect(retried.status).toBe('queued');
      expect(retried.source).toEqual(ARCHIVE_INFO);
      await expect(executor.retry('acme', retried.id)).rejects.toBeInstanceOf(ConflictError);
    });

    it('GIVEN a queued build WHEN cancelled THEN spec.shutdown is stored; once the controller fails it THEN cancelled', async () => {
      const { record } = await executor.submit(await archive('acme', 'key-cancel'));
      await executor.cancel('acme', record.id);
      const wf = (await custom.getNamespacedCustomObject({
        group: 'argoproj.io',
        version: 'v1alpha1',
        namespace: NS,
        plural: 'workflows',
        name: record.id,
      })) as any;
      expect(wf.spec.shutdown).toBe('Stop');
      await setStatus(record.id, { phase: 'Failed', message: "Stopped with strategy 'Stop'" });
      const rec = await executor.get('acme', record.id);
      expect(rec.status).toBe('cancelled');
      expect(rec.error).toEqual({ code: 'cancelled', message: 'the build was cancelled' });
      await expect(executor.cancel('acme', record.id)).rejects.toThrow(`build ${record.id} has already been cancelled`);
    });

    it('GIVEN a build that has not started WHEN its logs are read THEN there are none', async () => {
      const { record } = await executor.submit(await archive('acme', 'key-logs'));
      const lines: string[] = [];
      for await (const l of executor.logs('acme', record.id, { follow: false })) lines.push(l);
      expect(lines).toEqual([]);
    });

    it('GIVEN services WHEN asked THEN they are managed with helm: not found, empty, conflict', async () => {
      await expect(executor.getService('acme', 'orders')).rejects.toBeInstanceOf(NotFoundError);
      expect(await executor.listServices('acme')).toEqual([]);
      await expect(executor.updateService('acme', 'orders', { replicas: 2 })).rejects.toThrow(
        'services are managed with helm in the tenant namespace when the argo executor is used',
      );
      await expect(executor.deleteService('acme', 'orders')).rejects.toBeInstanceOf(ConflictError);
    });

    it('GIVEN the API on this executor WHEN GET /v1/builds/{id} THEN it answers the build; another tenant gets 404', async () => {
      const tokens = new TokenStore(join(work, 'tokens.json'));
      const acme = await tokens.create('acme');
      const globex = await tokens.create('globex');
      const app = createApp({ config, executor, tokens, log: () => undefined });
      const server = await new Promise<Server>((resolve) => {
        const s = app.listen(0, '127.0.0.1', () => resolve(s));
      });
      try {
        const port = (server.address() as { port: number }).port;
        const get = (token: string) => fetch(`http://127.0.0.1:${port}/v1/builds/${id}`, { headers: { Authorization: `Bearer ${token}` } });
        const res = await get(acme);
        expect(res.status).toBe(200);
        const body = (await res.json()) as any;
        expect(body).toMatchObject({
          id,
          status: 'succeeded',
          service: 'orders',
          qualifiedService: 'acme-orders',
          kind: 'python',
          image: expect.stringMatching(new RegExp(`^${reg.host}/svcbuild/acme-orders@sha256:1{64}$`)),
          error: null,
          retryOf: null,
          links: { self: `/v1/builds/${id}` },
        });
        expect(body.steps).toEqual(
          ['source', 'build', 'scan', 'overlay', 'publish', 'deploy'].map((name) => ({
            name,
            status: 'succeeded',
            seconds: 10,
            message: null,
          })),
        );
        const other = await get(globex);
        expect(other.status).toBe(404);
        expect(((await other.json()) as any).error.code).toBe('not_found');
        const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
        expect(await ready.json()).toEqual({ status: 'ready', executor: 'argo' });
      } finally {
        await new Promise<void>((r) => server.close(() => r()));
      }
    });
  });

  it('recordOf is pure: a Workflow with no status is a queued build', () => {
    const rec = recordOf({
      metadata: { name: 'acme-x-000000000000', labels: { 'svcbuild.io/tenant': 'acme', 'svcbuild.io/service': 'x' } },
      spec: {
        arguments: {
          parameters: [
            { name: 'source-kind', value: 'git' },
            { name: 'git-url', value: 'https://h/r' },
            { name: 'git-ref', value: 'main' },
          ],
        },
      },
    });
    expect(rec.status).toBe('queued');
    expect(rec.source).toEqual({ type: 'git', url: 'https://h/r', ref: 'main', subdirectory: '' });
  });
});
