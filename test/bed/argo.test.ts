/**
 * Level 3 of the cluster test bed (issue 7), first part: Argo's workflow-controller (v4.0.7,
 * built from its Go module) runs on the host against the single-node bed, with an argoexec
 * image built here; a Workflow from a WorkflowTemplate runs real pods (emissary executor) on
 * the node and passes an output parameter from one step to the next.
 *
 * Needs what test/bed/node.test.ts needs (root, containerd, runc, CNI plugins, buildah) and
 * the Go components built by scripts/bed/build.sh (cached; the first run builds them).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, CustomObjectsApi, KubeConfig, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { svcbuild } from '../helpers/cli.js';
import { startArgo, startCluster, type TestArgo, type TestCluster } from '../helpers/kube.js';

const registry = inject('registryHost');
const NS = 'bed-argo';
const SA = 'workflow';
const ARGO = { group: 'argoproj.io', version: 'v1alpha1' };

interface Workflow {
  metadata: { name: string };
  spec?: { workflowTemplateRef?: { name: string } };
  status?: {
    phase?: string;
    message?: string;
    nodes?: Record<
      string,
      {
        displayName: string;
        type: string;
        phase: string;
        message?: string;
        templateName?: string;
        outputs?: { parameters?: { name: string; value?: string }[] };
        inputs?: { parameters?: { name: string; value?: string }[] };
      }
    >;
  };
}

function clients(kubeconfig: string): { core: CoreV1Api; custom: CustomObjectsApi; rbac: RbacAuthorizationV1Api } {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  return {
    core: kc.makeApiClient(CoreV1Api),
    custom: kc.makeApiClient(CustomObjectsApi),
    rbac: kc.makeApiClient(RbacAuthorizationV1Api),
  };
}

function exec(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

const DONE = new Set(['Succeeded', 'Failed', 'Error']);

async function waitWorkflow(custom: CustomObjectsApi, name: string, timeoutMs: number): Promise<Workflow> {
  return waitFor(`Workflow ${name} to finish`, timeoutMs, async () => {
    const wf = (await custom.getNamespacedCustomObject({ ...ARGO, namespace: NS, plural: 'workflows', name })) as Workflow;
    return DONE.has(wf.status?.phase ?? '') ? wf : undefined;
  });
}

describe('test bed level 3: Argo workflow-controller runs a Workflow from a WorkflowTemplate', () => {
  let cluster: TestCluster;
  let argo: TestArgo;
  let stateDir: string;
  let image: string;

  beforeAll(async () => {
    // The python base image (it has a shell), built into the test registry.
    stateDir = await mkdtemp(join(tmpdir(), 'svcbuild-state-'));
    const built = await svcbuild(['base', 'build', 'python-3.13', '--json'], {
      SVCBUILD_REGISTRY: registry,
      SVCBUILD_STATE_DIR: stateDir,
    });
    if (built.code !== 0) throw new Error(`svcbuild base build failed:\n${built.output}`);
    image = (JSON.parse(built.stdout) as { ref: string }[])[0].ref;
    cluster = await startCluster({ registry });
    argo = await startArgo(cluster, { registry });
    const { core, rbac } = clients(cluster.kubeconfig);
    await core.createNamespace({ body: { metadata: { name: NS } } });
    // The executor (wait container) reports outputs as WorkflowTaskResults: its Role.
    await core.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name: SA } } });
    await rbac.createNamespacedRole({
      namespace: NS,
      body: {
        metadata: { name: 'executor' },
        rules: [{ apiGroups: ['argoproj.io'], resources: ['workflowtaskresults'], verbs: ['create', 'patch'] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: NS,
      body: {
        metadata: { name: 'executor' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'executor' },
        subjects: [{ kind: 'ServiceAccount', name: SA, namespace: NS }],
      },
    });
  }, 1_500_000);

  afterAll(async () => {
    await argo?.stop();
    await cluster?.stop();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  it('runs the controller built here with the argoexec image pushed to the test registry', async () => {
    // GIVEN the started controller WHEN its version and executor image are read
    const cache = process.env.SVCBUILD_BED_CACHE ?? join(homedir(), '.cache/svcbuild-bed');
    const version = await exec(join(cache, 'bin/workflow-controller'), ['version']);
    // THEN it is v4.0.7 and the executor image is the locally built one, by content tag
    expect(version.code).toBe(0);
    expect(version.stdout).toMatch(/^workflow-controller: v4\.0\.7\b/m);
    expect(argo.namespace).toBe('argo');
    expect(argo.executorImage).toMatch(new RegExp(`^${registry.replace(/\./g, '\\.')}/svcbuild/bed/argoexec:[0-9a-f]{16}$`));
    const health = await exec('curl', ['-fsS', 'http://127.0.0.1:6060/healthz']);
    expect(health.code).toBe(0);
  });

  it('runs a two-step WorkflowTemplate: the first step output parameter reaches the second', { timeout: 360_000 }, async () => {
    // GIVEN a WorkflowTemplate whose first step writes a file read as output parameter `msg`,
    // passed as input to a second step that prints it
    const { custom, core } = clients(cluster.kubeconfig);
    await custom.createNamespacedCustomObject({
      ...ARGO,
      namespace: NS,
      plural: 'workflowtemplates',
      body: {
        apiVersion: 'argoproj.io/v1alpha1',
        kind: 'WorkflowTemplate',
        metadata: { name: 'pass-a-message' },
        spec: {
          entrypoint: 'main',
          serviceAccountName: SA,
          arguments: { parameters: [{ name: 'word', value: 'bed' }] },
          templates: [
            {
              name: 'main',
              steps: [
                [{ name: 'say', template: 'say', arguments: { parameters: [{ name: 'word', value: '{{workflow.parameters.word}}' }] } }],
                [{ name: 'hear', template: 'hear', arguments: { parameters: [{ name: 'msg', value: '{{steps.say.outputs.parameters.msg}}' }] } }],
              ],
            },
            {
              name: 'say',
              inputs: { parameters: [{ name: 'word' }] },
              container: {
                image,
                command: ['sh', '-c'],
                args: ['mkdir -p /tmp/outputs && printf "hello from the %s" "{{inputs.parameters.word}}" > /tmp/outputs/msg'],
              },
              outputs: { parameters: [{ name: 'msg', valueFrom: { path: '/tmp/outputs/msg' } }] },
            },
            {
              name: 'hear',
              inputs: { parameters: [{ name: 'msg' }] },
              container: { image, command: ['sh', '-c'], args: ['echo "heard: {{inputs.parameters.msg}}"'] },
            },
          ],
        },
      },
    });

    // WHEN a Workflow referencing it is created and the controller runs it
    const created = (await custom.createNamespacedCustomObject({
      ...ARGO,
      namespace: NS,
      plural: 'workflows',
      body: {
        apiVersion: 'argoproj.io/v1alpha1',
        kind: 'Workflow',
        metadata: { generateName: 'pass-a-message-' },
        spec: { workflowTemplateRef: { name: 'pass-a-message' } },
      },
    })) as Workflow;
    const wf = await waitWorkflow(custom, created.metadata.name, 300_000);

    // THEN it succeeds, step `say` outputs the exact message and step `hear` got it as input
    expect({ phase: wf.status?.phase, message: wf.status?.message }).toEqual({ phase: 'Succeeded', message: undefined });
    const nodes = Object.values(wf.status?.nodes ?? {});
    const pods = nodes.filter((n) => n.type === 'Pod');
    expect(pods.map((n) => [n.displayName, n.phase]).sort()).toEqual([
      ['hear', 'Succeeded'],
      ['say', 'Succeeded'],
    ]);
    expect(pods.find((n) => n.displayName === 'say')?.outputs?.parameters).toEqual([
      { name: 'msg', value: 'hello from the bed', valueFrom: { path: '/tmp/outputs/msg' } },
    ]);
    expect(pods.find((n) => n.displayName === 'hear')?.inputs?.parameters).toEqual([{ name: 'msg', value: 'hello from the bed' }]);

    // AND the second step's pod ran on the node with the locally built executor, and its main
    // container printed the message
    const list = await core.listNamespacedPod({
      namespace: NS,
      labelSelector: `workflows.argoproj.io/workflow=${created.metadata.name}`,
    });
    expect(list.items).toHaveLength(2);
    const hear = list.items.find((p) => p.metadata?.annotations?.['workflows.argoproj.io/node-name']?.endsWith('.hear'));
    expect(hear?.spec?.nodeName).toBe('svcbuild-bed');
    expect(hear?.spec?.initContainers?.map((c) => [c.name, c.image])).toEqual([['init', argo.executorImage]]);
    expect(hear?.spec?.containers.map((c) => [c.name, c.image])).toEqual([
      ['wait', argo.executorImage],
      ['main', image],
    ]);
    const logs = await exec('kubectl', ['--kubeconfig', cluster.kubeconfig, '-n', NS, 'logs', hear?.metadata?.name ?? '', '-c', 'main']);
    expect(logs.code).toBe(0);
    // The emissary's own log lines (tagged argo=true) frame the command's output.
    const lines = logs.stdout.trimEnd().split('\n');
    expect(lines.filter((l) => !/\bargo=true\b/.test(l))).toEqual(['heard: hello from the bed']);
    expect(lines.find((l) => l.includes('msg="sub-process exited"'))).toMatch(/ error=<nil>( |$)/);
  });

  it('accepts svcbuild\'s own templates: a svcbuild-build Workflow passes validation and its semaphore, then waits for the step image', { timeout: 240_000 }, async () => {
    // GIVEN svcbuild's WorkflowTemplates and build accounts installed with `svcbuild install`
    // into a build namespace, a tenant namespace, and the tenant's concurrency key
    const { custom, core } = clients(cluster.kubeconfig);
    for (const name of ['svcbuild', 'acme']) await core.createNamespace({ body: { metadata: { name } } });
    const install = await svcbuild(
      ['install', '--namespace', 'svcbuild', '--tenant-namespace', 'acme', '--kubeconfig', cluster.kubeconfig],
      { SVCBUILD_REGISTRY: registry, SVCBUILD_STATE_DIR: stateDir },
    );
    expect(install.code, install.output).toBe(0);
    expect(install.stdout).toContain('applied WorkflowTemplate/svcbuild-build');
    // install made the semaphore ConfigMap (tenants named with --tenant get a key); this
    // tenant was only given as a namespace, so its key is added by hand
    const cm = await core.readNamespacedConfigMap({ namespace: 'svcbuild', name: 'svcbuild-concurrency' });
    await core.replaceNamespacedConfigMap({
      namespace: 'svcbuild',
      name: 'svcbuild-concurrency',
      body: { ...cm, data: { ...cm.data, acme: '1' } },
    });
    const template = (await custom.getNamespacedCustomObject({
      ...ARGO,
      namespace: 'svcbuild',
      plural: 'workflowtemplates',
      name: 'svcbuild-build',
    })) as { spec: { templates: { name: string; container?: { image: string } }[] } };
    const stepImage = template.spec.templates.find((t) => t.name === 'source')?.container?.image;
    expect(stepImage).toMatch(/\/svcbuild\/svcbuild:[^/]+$/);

    // WHEN a Workflow referencing svcbuild-build is submitted with the required arguments
    const args: Record<string, string> = {
      tenant: 'acme',
      service: 'hello',
      'build-id': 'b1',
      language: 'python',
      base: 'python-3.13',
      'base-ref': image,
      'image-repo': `${registry}/svcbuild/acme-hello`,
      namespace: 'acme',
    };
    const created = (await custom.createNamespacedCustomObject({
      ...ARGO,
      namespace: 'svcbuild',
      plural: 'workflows',
      body: {
        apiVersion: 'argoproj.io/v1alpha1',
        kind: 'Workflow',
        metadata: { generateName: 'svcbuild-build-' },
        spec: {
          workflowTemplateRef: { name: 'svcbuild-build' },
          arguments: { parameters: Object.entries(args).map(([name, value]) => ({ name, value })) },
        },
      },
    })) as Workflow;

    // THEN the controller accepts it (Running, not failed validation) and schedules the first
    // step's pod, which waits for the svcbuild step image that the bed does not build yet
    const pending = await waitFor('the source step pod to fail pulling the step image', 120_000, async () => {
      const wf = (await custom.getNamespacedCustomObject({
        ...ARGO,
        namespace: 'svcbuild',
        plural: 'workflows',
        name: created.metadata.name,
      })) as Workflow;
      if (DONE.has(wf.status?.phase ?? '')) throw new Error(`Workflow ended: ${JSON.stringify(wf.status)}`);
      const pod = Object.values(wf.status?.nodes ?? {}).find((n) => n.type === 'Pod');
      return pod?.message?.startsWith('ErrImagePull') || pod?.message?.startsWith('ImagePullBackOff') ? { wf, pod } : undefined;
    });
    expect(pending.wf.status?.phase).toBe('Running');
    expect(pending.pod.displayName).toBe('source(0)');
    expect(pending.pod.message).toContain(`failed to pull and unpack image "${stepImage}"`);
    await custom.deleteNamespacedCustomObject({ ...ARGO, namespace: 'svcbuild', plural: 'workflows', name: created.metadata.name });
  });

  it('stops the controller', { timeout: 120_000 }, async () => {
    // GIVEN the running controller WHEN it is stopped
    await argo.stop();
    // THEN its process is gone, its health port no longer answers and no pid file is left
    const health = await exec('curl', ['-fsS', '--max-time', '3', 'http://127.0.0.1:6060/healthz']);
    expect(health.code).not.toBe(0);
    expect((await readdir(join(cluster.runDir, 'argo'))).includes('controller.pid')).toBe(false);
    const procs = (await exec('pgrep', ['-af', join(cluster.runDir, 'admin.kubeconfig')])).stdout;
    expect(procs.split('\n').filter((l) => l.includes('workflow-controller'))).toEqual([]);
    expect(await readFile(argo.logFile, 'utf8')).toContain('Leader election is turned off');
  });
});
