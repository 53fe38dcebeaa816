/**
 * The argo executor against a real kube-apiserver + etcd with Argo's full CRDs
 * (test/helpers/kube.ts). There is no Argo controller here: the tests check what the API
 * accepts (templates, Workflows, cancel patches, retries, RBAC denials) and drive status
 * changes by patching as an admin would, which the watch must then report.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CoreV1Api, CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArgoExecutor, applyObjects, renderRbac, type BuildView } from '../../../src/executors/argo/index.js';
import { renderWorkflowTemplates, type BuildSubmission } from '../../../src/render/index.js';
import { UpstreamError } from '../../../src/errors.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const KUBE_HELPER = join(ROOT, 'test', 'helpers', 'kube.ts');
const NS = 'builds';
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

  it('GIVEN the rendered templates and chart RBAC WHEN installed twice THEN the apiserver accepts them', async () => {
    const objects = [
      ...(await renderRbac({ namespace: NS, tenantNamespaces: ['tenant-acme'], chartDir: join(ROOT, 'charts', 'svcbuild') })),
      ...renderWorkflowTemplates({ stepImage: 'r/svcbuild:1', builder: { kanikoImage: 'r/kaniko:1', buildahImage: 'r/svcbuild:1' } }),
    ];
    const first = await applyObjects(kc, objects, NS);
    expect(first).toContain('WorkflowTemplate/svcbuild-build');
    expect(first).toContain('RoleBinding/svcbuild-api');
    expect(await applyObjects(kc, objects, NS)).toEqual(first);
    const t = (await custom.getNamespacedCustomObject({
      group: 'argoproj.io',
      version: 'v1alpha1',
      namespace: NS,
      plural: 'workflowtemplates',
      name: 'svcbuild-build',
    })) as any;
    expect(t.spec.synchronization.semaphores[0].configMapKeyRef.key).toBe('{{workflow.parameters.tenant}}');
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
