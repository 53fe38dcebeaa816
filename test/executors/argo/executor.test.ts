/**
 * The argo executor against a real kube-apiserver + etcd with Argo's full CRDs
 * (test/helpers/kube.ts). There is no Argo controller here: the tests check what the API
 * accepts (templates, Workflows, cancel patches, retries, RBAC denials) and drive status
 * changes by patching as an admin would, which the watch must then report.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CoreV1Api, CustomObjectsApi, KubeConfig, PatchStrategy, RbacAuthorizationV1Api, setHeaderOptions } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArgoExecutor, applyObjects, ensureConfigMapKeys, renderRbac, type BuildView } from '../../../src/executors/argo/index.js';
import { renderWorkflowTemplates, type BuildSubmission } from '../../../src/render/index.js';
import { UpstreamError } from '../../../src/errors.js';
import { svcbuild } from '../../helpers/cli.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const KUBE_HELPER = join(ROOT, 'test', 'helpers', 'kube.ts');
const NS = 'builds';
const CA_FILE = join(ROOT, 'test', 'fixtures', 'ca', 'test-ca.pem');
const SUBMISSION: BuildSubmission = {
  tenant: 'acme',
  service: 'orders',
  language: 'python',
  source: { kind: 'archive', ref: `127.0.0.1:5000/svcbuild/acme-orders@sha256:${'b'.repeat(64)}` },
  base: 'python-3.13',
  baseRef: `127.0.0.1:5000/svcbuild/base/python-3.13@sha256:${'c'.repeat(64)}`,
  imageRepo: '127.0.0.1:5000/svcbuild/acme-orders',
  namespace: 'tenant-acme',
};

describe.skipIf(!existsSync(KUBE_HELPER))('argo executor on a real kube-apiserver (needs test/helpers/kube.ts)', () => {
  let kube: { kubeconfig: string; userKubeconfig(name: string, groups?: string[]): Promise<string>; stop(): Promise<void> };
  let kc: KubeConfig;
  let executor: ArgoExecutor;
  let custom: CustomObjectsApi;

  beforeAll(async () => {
    const { startKube } = (await import(KUBE_HELPER)) as { startKube(): Promise<typeof kube> };
    kube = await startKube();
    kc = new KubeConfig();
    kc.loadFromFile(kube.kubeconfig);
    const core = kc.makeApiClient(CoreV1Api);
    for (const name of [NS, 'tenant-acme']) await core.createNamespace({ body: { metadata: { name } } });
    custom = kc.makeApiClient(CustomObjectsApi);
    executor = new ArgoExecutor({ kubeConfig: kc, namespace: NS });
  }, 1_800_000);
  afterAll(async () => {
    await kube?.stop();
  });

  /** A WorkflowTemplate as the apiserver stored it. */
  const installedTemplate = async (name: string): Promise<any> =>
    custom.getNamespacedCustomObject({ group: 'argoproj.io', version: 'v1alpha1', namespace: NS, plural: 'workflowtemplates', name });

  it('GIVEN the rendered templates and chart RBAC WHEN installed twice THEN the apiserver accepts them', async () => {
    const objects = [
      ...(await renderRbac({ namespace: NS, tenantNamespaces: ['tenant-acme'], chartDir: join(ROOT, 'charts', 'svcbuild') })),
      ...renderWorkflowTemplates({ stepImage: 'r/svcbuild:1', builder: { kanikoImage: 'r/kaniko:1', buildahImage: 'r/svcbuild:1' } }),
    ];
    const first = await applyObjects(kc, objects, NS);
    expect(first).toContain('WorkflowTemplate/svcbuild-build');
    expect(first).toContain('RoleBinding/svcbuild-api');
    expect(await applyObjects(kc, objects, NS)).toEqual(first);
    const t = await installedTemplate('svcbuild-build');
    expect(t.spec.synchronization.semaphores[0].configMapKeyRef.key).toBe('{{workflow.parameters.tenant}}');
  });

  it('GIVEN svcbuild install with tenants and a CA bundle WHEN run twice THEN semaphore keys are only ever added and the builder mounts the bundle', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const concurrency = async () => (await core.readNamespacedConfigMap({ name: 'svcbuild-concurrency', namespace: NS })).data;
    // GIVEN an installation whose registry is a private IP over plain HTTP
    const env = {
      SVCBUILD_CONFIG: '',
      SVCBUILD_REGISTRY: '10.244.0.1:5000',
      SVCBUILD_REGISTRY_NAMESPACE: '',
      SVCBUILD_REGISTRY_PLAIN_HTTP: 'true',
    };
    // WHEN installed with a tenant and a CA bundle
    const first = await svcbuild(['install', '-n', NS, '--kubeconfig', kube.kubeconfig, '--tenant', 'acme', '--ca-bundle', CA_FILE], env);
    expect(first.code, first.stderr).toBe(0);
    const lines = first.stdout.trim().split('\n');
    // THEN it applied the CA ConfigMap, created the semaphore ConfigMap with the tenant's key, then the templates
    expect(lines).toContain('applied ConfigMap/svcbuild-ca-bundle');
    expect(lines).toContain('applied Role/svcbuild-deploy');
    expect(lines.slice(-3)).toEqual([
      'applied ConfigMap/svcbuild-concurrency (added acme=2, base-images=1)',
      'applied WorkflowTemplate/svcbuild-base-image',
      'applied WorkflowTemplate/svcbuild-build',
    ]);
    expect(await concurrency()).toEqual({ acme: '2', 'base-images': '1' });
    const ca = await core.readNamespacedConfigMap({ name: 'svcbuild-ca-bundle', namespace: NS });
    expect(ca.data).toEqual({ 'ca-certificates.crt': await readFile(CA_FILE, 'utf8') });
    // AND the deploy Role is in the tenant's namespace (config executor.tenantNamespace)
    const roles = await kc.makeApiClient(RbacAuthorizationV1Api).listNamespacedRole({ namespace: 'tenant-acme' });
    expect(roles.items.map((r) => r.metadata?.name)).toEqual(['svcbuild-deploy']);
    // AND the installed templates hand the steps the registry and mount the bundle in the builder
    const t = await installedTemplate('svcbuild-build');
    const step = (name: string) => t.spec.templates.find((x: { name: string }) => x.name === name);
    expect(step('source').container.env).toEqual([
      { name: 'SVCBUILD_REGISTRY', value: '10.244.0.1:5000' },
      { name: 'SVCBUILD_REGISTRY_NAMESPACE', value: 'svcbuild' },
      { name: 'SVCBUILD_REGISTRY_PLAIN_HTTP', value: 'true' },
      { name: 'SVCBUILD_STATE_DIR', value: '/tmp/svcbuild-state' },
    ]);
    expect(step('build').container.volumeMounts).toContainEqual({
      name: 'ca-bundle',
      mountPath: '/etc/ssl/certs/ca-certificates.crt',
      subPath: 'ca-certificates.crt',
      readOnly: true,
    });

    // GIVEN an operator who changed acme's value
    await core.patchNamespacedConfigMap(
      { name: 'svcbuild-concurrency', namespace: NS, body: { data: { acme: '5' } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await core.createNamespace({ body: { metadata: { name: 'tenant-beta' } } });
    // WHEN installed again with another tenant and another number
    const again = await svcbuild(
      ['install', '-n', NS, '--kubeconfig', kube.kubeconfig, '--tenant', 'acme', '--tenant', 'beta', '--concurrency', '3'],
      env,
    );
    expect(again.code, again.stderr).toBe(0);
    // THEN only the new tenant's key is added; the operator's value stays
    expect(again.stdout).toContain('applied ConfigMap/svcbuild-concurrency (added beta=3; kept acme, base-images)\n');
    expect(await concurrency()).toEqual({ acme: '5', 'base-images': '1', beta: '3' });
    // AND without --ca-bundle the builder mounts nothing
    const plain = await installedTemplate('svcbuild-build');
    expect(JSON.stringify(plain.spec)).not.toContain('ca-bundle');

    // GIVEN bad flags THEN one InputError names each flag and its fix, and nothing is applied
    const bad = await svcbuild(['install', '--tenant', 'Acme', '--concurrency', '0', '--ca-bundle', '/nonexistent.pem'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--namespace: required: the build namespace, e.g. --namespace svcbuild-builds');
    expect(bad.stderr).toContain('--tenant: "Acme" is not a tenant: a lower-case DNS label of at most 30 characters');
    expect(bad.stderr).toContain('--concurrency: "0" is not a whole number of builds from 1 to 1000');
    expect(bad.stderr).toContain('--ca-bundle: cannot read /nonexistent.pem (');
  });

  it('GIVEN the API account (chart RBAC) WHEN a tenant key is missing THEN it may add it, and touch no other ConfigMap', async () => {
    const api = new KubeConfig();
    api.loadFromFile(await kube.userKubeconfig(`system:serviceaccount:${NS}:svcbuild`));
    const core = api.makeApiClient(CoreV1Api);
    expect(await ensureConfigMapKeys(core, NS, 'svcbuild-concurrency', { gamma: '2', acme: '9' })).toEqual({
      created: false,
      added: ['gamma'],
      kept: ['acme'],
    });
    expect((await kc.makeApiClient(CoreV1Api).readNamespacedConfigMap({ name: 'svcbuild-concurrency', namespace: NS })).data).toEqual({
      acme: '5',
      'base-images': '1',
      beta: '3',
      gamma: '2',
    });
    const denied = await ensureConfigMapKeys(core, NS, 'svcbuild-ca-bundle', { x: '1' }).catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(UpstreamError);
    expect((denied as UpstreamError).upstreamStatus).toBe(403);
  });

  it('GIVEN a submission WHEN submitted twice THEN one Workflow exists', async () => {
    const a = await executor.submit(SUBMISSION);
    const b = await executor.submit(SUBMISSION);
    expect([a.created, b.created]).toEqual([true, false]);
    expect(b.name).toBe(a.name);
    expect(b.workflow.metadata.name).toBe(a.name);
  });

  it('GIVEN the build account (no rights) WHEN it submits THEN the apiserver denies it; the API account may', async () => {
    const denied = new KubeConfig();
    denied.loadFromFile(await kube.userKubeconfig(`system:serviceaccount:${NS}:svcbuild-build`));
    const err = await new ArgoExecutor({ kubeConfig: denied, namespace: NS })
      .submit({ ...SUBMISSION, service: 'other' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamError);
    expect((err as UpstreamError).upstreamStatus).toBe(403);
    const api = new KubeConfig();
    api.loadFromFile(await kube.userKubeconfig(`system:serviceaccount:${NS}:svcbuild`));
    expect((await new ArgoExecutor({ kubeConfig: api, namespace: NS }).submit({ ...SUBMISSION, service: 'other' })).created).toBe(true);
  });

  it('GIVEN a running build WHEN its status changes THEN watch reports the steps until it is done', async () => {
    const { name } = await executor.submit({ ...SUBMISSION, service: 'watched' });
    const views: BuildView[] = [];
    const done = (async () => {
      for await (const v of executor.watch(name)) views.push(v);
    })();
    const node = (id: string, step: string, phase: string, type = 'Retry') => ({
      id,
      name: `${name}[${id.at(-1)}].${step}`,
      displayName: step,
      type,
      phase,
      templateName: step,
    });
    const setStatus = (status: object) =>
      custom.patchNamespacedCustomObject(
        { group: 'argoproj.io', version: 'v1alpha1', namespace: NS, plural: 'workflows', name, body: { status } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    await new Promise((r) => setTimeout(r, 300));
    await setStatus({ phase: 'Running', nodes: { n0: node('n0', 'source', 'Running') } });
    await new Promise((r) => setTimeout(r, 300));
    await setStatus({
      phase: 'Failed',
      message: 'scan gate',
      nodes: { n0: node('n0', 'source', 'Succeeded'), n1: node('n1', 'build', 'Failed') },
    });
    await done;
    expect(views.map((v) => [v.phase, v.steps.map((s) => s.status).join(',')])).toEqual([
      ['pending', 'pending,pending,pending,pending,pending,pending'],
      ['running', 'running,pending,pending,pending,pending,pending'],
      ['failed', 'succeeded,failed,skipped,skipped,skipped,skipped'],
    ]);

    // THEN a failed build can be retried, once per attempt (same name again), with the same parameters
    const retry = await executor.retry(name);
    expect(retry.name).toBe(`${name}-r1`);
    expect((await executor.retry(name)).created).toBe(false);
    const original = await executor.get(name);
    expect((retry.workflow.spec as any).arguments).toEqual((original.spec as any).arguments);
    expect(retry.workflow.metadata.labels?.['svcbuild.io/retry-of']).toBe(name);
  });

  it('GIVEN a build WHEN cancelled THEN the apiserver stores spec.shutdown', async () => {
    const { name } = await executor.submit({ ...SUBMISSION, service: 'cancelled' });
    expect(((await executor.cancel(name, 'Terminate')).spec as any).shutdown).toBe('Terminate');
    await expect(executor.retry(name)).rejects.toThrow(/only a failed build/);
  });
});
