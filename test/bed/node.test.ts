/**
 * Level 2 of the cluster test bed (issue 7): a real node next to the level-1 apiserver:
 * containerd with a locally built pause image, a CNI bridge, kubelet, kube-controller-manager,
 * kube-scheduler and kube-proxy (iptables), all built from the Kubernetes module. A pod of one
 * of our base images must run and answer HTTP through a ClusterIP Service.
 *
 * Needs root, containerd + runc + containernetworking-plugins from Debian, buildah, and the
 * Go components built by scripts/bed/build.sh (cached; the first run builds them).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { svcbuild } from '../helpers/cli.js';
import { startCluster, type TestCluster } from '../helpers/kube.js';

const registry = inject('registryHost');
const NS = 'bed-node';
const PORT = 8080;

function core(kubeconfig: string): CoreV1Api {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  return kc.makeApiClient(CoreV1Api);
}

function exec(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
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
    await new Promise((r) => setTimeout(r, 500));
  }
}

function httpGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { timeout: 5_000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

const podReady = (p: V1Pod): boolean => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

describe('test bed level 2: a node runs a base-image pod behind a ClusterIP Service', () => {
  let cluster: TestCluster;
  let stateDir: string;
  let image: string;
  let digest: string;

  beforeAll(async () => {
    // The python base image, built into the test registry (cached across files of one run).
    stateDir = await mkdtemp(join(tmpdir(), 'svcbuild-state-'));
    const built = await svcbuild(['base', 'build', 'python-3.13', '--json'], {
      SVCBUILD_REGISTRY: registry,
      SVCBUILD_STATE_DIR: stateDir,
    });
    if (built.code !== 0) throw new Error(`svcbuild base build failed:\n${built.output}`);
    const [base] = JSON.parse(built.stdout) as { ref: string; digest: string }[];
    image = base.ref;
    digest = base.digest;
    // The pause image goes to the same registry; containerd pulls from it over plain HTTP.
    cluster = await startCluster({ registry });
    const api = core(cluster.kubeconfig);
    await api.createNamespace({ body: { metadata: { name: NS } } });
    // Pods need the namespace's default ServiceAccount (made by kube-controller-manager).
    await waitFor(
      'the default ServiceAccount',
      60_000,
      async () => (await api.readNamespacedServiceAccount({ name: 'default', namespace: NS })).metadata?.name,
    );
  }, 1_500_000);

  afterAll(async () => {
    await cluster?.stop();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  it('registers a Ready, schedulable node: kubelet v1.34.4 on containerd 1.6 with the bed pod CIDR', async () => {
    // GIVEN the started cluster WHEN its node is read
    const node = await core(cluster.kubeconfig).readNode({ name: cluster.node.name });
    // THEN it is Ready without taints, runs the versions built here, and has the bed's addresses
    expect(node.metadata?.name).toBe('svcbuild-bed');
    expect(node.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    expect(node.spec?.taints ?? []).toEqual([]);
    expect(node.status?.nodeInfo?.kubeletVersion).toBe('v1.34.4');
    expect(node.status?.nodeInfo?.kubeProxyVersion).toBe('');
    expect(node.status?.nodeInfo?.containerRuntimeVersion).toMatch(/^containerd:\/\/1\.6\.\d+$/);
    expect(node.status?.addresses).toEqual([
      { type: 'InternalIP', address: cluster.node.ip },
      { type: 'Hostname', address: 'svcbuild-bed' },
    ]);
    expect(node.spec?.podCIDR).toBe('10.244.0.0/24');
    expect(cluster.node.pauseImage).toMatch(new RegExp(`^${registry.replace(/\./g, '\\.')}/svcbuild/bed/pause:[0-9a-f]{16}$`));
  });

  it('runs the python base image as user 1000 and answers HTTP 200 through a ClusterIP Service', { timeout: 240_000 }, async () => {
    // GIVEN a pod of the python base image (by digest) serving http.server on PORT as uid 1000,
    // and a ClusterIP Service on port 80 selecting it
    const api = core(cluster.kubeconfig);
    await api.createNamespacedPod({
      namespace: NS,
      body: {
        metadata: { name: 'web', labels: { app: 'web' } },
        spec: {
          securityContext: { runAsUser: 1000, runAsGroup: 1000, runAsNonRoot: true },
          containers: [
            {
              name: 'web',
              image,
              command: ['sh', '-c', 'exec python -m http.server "$PORT"'],
              env: [{ name: 'PORT', value: String(PORT) }],
              ports: [{ containerPort: PORT }],
              readinessProbe: { httpGet: { path: '/', port: PORT }, periodSeconds: 1 },
            },
          ],
        },
      },
    });
    const svc = await api.createNamespacedService({
      namespace: NS,
      body: {
        metadata: { name: 'web' },
        spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: PORT }] },
      },
    });
    // WHEN the pod is scheduled and started
    const pod = await waitFor('pod web Ready', 180_000, async () => {
      const p = await api.readNamespacedPod({ name: 'web', namespace: NS });
      return podReady(p) ? p : undefined;
    });
    // THEN it runs on the node, in the pod CIDR, from the image by digest, as uid 1000
    expect(pod.spec?.nodeName).toBe('svcbuild-bed');
    expect(pod.status?.phase).toBe('Running');
    expect(pod.status?.hostIP).toBe(cluster.node.ip);
    expect(pod.status?.podIP).toMatch(/^10\.244\.0\.\d+$/);
    const status = pod.status?.containerStatuses?.[0];
    expect(status?.ready).toBe(true);
    expect(status?.restartCount).toBe(0);
    expect(status?.imageID).toBe(`${image.split('@')[0]}@${digest}`);
    const id = await exec('kubectl', ['--kubeconfig', cluster.kubeconfig, '-n', NS, 'exec', 'web', '--', 'id', '-u']);
    expect(id).toEqual({ code: 0, stdout: '1000\n', stderr: '' });

    // AND the Service has the pod as its endpoint, and its ClusterIP answers from the host
    // (kube-proxy's iptables rules DNAT it to the pod)
    const clusterIP = svc.spec?.clusterIP ?? '';
    expect(clusterIP).toMatch(/^10\.0\.0\.\d+$/);
    const res = await waitFor('HTTP through the ClusterIP', 30_000, async () => {
      const r = await httpGet(`http://${clusterIP}:80/`);
      return r.status === 200 ? r : undefined;
    });
    expect(res.status).toBe(200);
    expect(res.body).toContain('<title>Directory listing for /</title>');
  });

  it('sandboxes the pod with the pause image built here', async () => {
    // GIVEN the running pod WHEN the node's containerd lists its images
    const ls = await exec('ctr', ['--address', cluster.node.containerdSocket, '-n', 'k8s.io', 'images', 'ls', '-q']);
    // THEN the locally built pause image and the base image are there, and nothing else
    expect(ls.code).toBe(0);
    const refs = ls.stdout.trim().split('\n').sort();
    expect(refs).toContain(cluster.node.pauseImage);
    expect(refs).toContain(image);
    expect(refs.every((r) => r.startsWith(`${registry}/`) || r.startsWith('sha256:'))).toBe(true);
  });

  it('gives the pod a service-account token the apiserver accepts through the kubernetes Service', async () => {
    // GIVEN the running pod WHEN it asks the apiserver who it is, via 10.0.0.1:443 with its
    // projected token and CA
    const script = [
      'import json, ssl, urllib.request',
      "d = '/var/run/secrets/kubernetes.io/serviceaccount/'",
      "ctx = ssl.create_default_context(cafile=d + 'ca.crt')",
      "body = json.dumps({'apiVersion': 'authentication.k8s.io/v1', 'kind': 'SelfSubjectReview'}).encode()",
      "req = urllib.request.Request('https://10.0.0.1:443/apis/authentication.k8s.io/v1/selfsubjectreviews', data=body, method='POST',",
      "  headers={'Authorization': 'Bearer ' + open(d + 'token').read(), 'Content-Type': 'application/json'})",
      "print(json.load(urllib.request.urlopen(req, context=ctx))['status']['userInfo']['username'])",
    ].join('\n');
    const out = await exec('kubectl', ['--kubeconfig', cluster.kubeconfig, '-n', NS, 'exec', 'web', '--', 'python', '-c', script]);
    // THEN the apiserver names the pod's service account
    expect(out).toEqual({ code: 0, stdout: `system:serviceaccount:${NS}:default\n`, stderr: '' });
  });

  it('stops the node without leaving containers, mounts, network or iptables rules behind', { timeout: 120_000 }, async () => {
    // GIVEN the running node with a pod WHEN the node is stopped
    await cluster.node.stop();
    // THEN no bridge, mount under the run dir, KUBE-/CNI- iptables chain, cgroup or containerd
    // process of the bed is left, and the apiserver still answers
    expect((await exec('ip', ['link', 'show', cluster.node.bridge])).code).not.toBe(0);
    const mounts = await readFile('/proc/self/mountinfo', 'utf8');
    expect(mounts.split('\n').filter((l) => l.includes(cluster.runDir))).toEqual([]);
    const rules = (await exec('iptables-save', [])).stdout;
    expect(rules.split('\n').filter((l) => /KUBE-|CNI-/.test(l))).toEqual([]);
    expect(existsSync('/sys/fs/cgroup/memory/svcbuild-bed')).toBe(false);
    expect(existsSync(join(cluster.runDir, 'node'))).toBe(false);
    const procs = (await exec('pgrep', ['-af', cluster.node.containerdSocket])).stdout;
    expect(procs).toBe('');
    const ready = await exec('kubectl', ['--kubeconfig', cluster.kubeconfig, 'get', '--raw', '/readyz']);
    expect(ready).toEqual({ code: 0, stdout: 'ok', stderr: '' });
  });
});
