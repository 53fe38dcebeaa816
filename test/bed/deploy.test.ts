/**
 * Deploy on a real cluster (bed level 2): the chart a local build published is installed
 * with `svcbuild deploy` (helm upgrade --install, --wait, --rollback-on-failure) into the
 * tenant namespace, and the service answers through its ClusterIP Service. A new version
 * replaces it; a version that never becomes ready is rolled back while the old one serves.
 */
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ROOT, svcbuild } from '../helpers/cli.js';
import { startCluster, type TestCluster } from '../helpers/kube.js';

const registry = inject('registryHost');
const NS = 'acme';
let cluster: TestCluster;
let work: string;
let env: Record<string, string>;

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

/** Builds a copy of node-hello whose answer names `version`; returns the build's JSON. */
async function buildVersion(version: string, broken = false): Promise<any> {
  const dir = join(work, `src-${version}`);
  await cp(join(ROOT, 'examples/node-hello'), dir, { recursive: true });
  const server = join(dir, 'server.js');
  let text = (await readFile(server, 'utf8')).replace("service: 'node-hello'", `service: 'node-hello', version: '${version}'`);
  if (broken) text = `process.exit(1);\n${text}`;
  await writeFile(server, text);
  const res = await svcbuild(['build', dir, '--name', 'shop', '--json'], env);
  expect(res.code, res.stderr).toBe(0);
  return JSON.parse(res.stdout);
}

async function deploy(build: any, extra: string[] = []) {
  const out = await mkdtemp(join(work, 'out-'));
  const chart = `${build.chart.ref}:${build.chart.version}@${build.chart.digest}`;
  const res = await svcbuild(
    ['deploy', `--chart=${chart}`, `--namespace=${NS}`, '--tenant=local', '--service=shop', '--wait', '--rollback-on-failure', `--outputs=${out}`, ...extra],
    { ...env, KUBECONFIG: cluster.kubeconfig },
  );
  let revision: string | undefined;
  try {
    revision = (await readFile(join(out, 'revision'), 'utf8')).trim();
  } catch {
    revision = undefined;
  }
  return { ...res, revision };
}

/** The service's answer once it names `version` (kube-proxy applies endpoint changes a moment after the rollout). */
async function answerOf(version: string, timeoutMs = 60_000): Promise<{ status: number; body: any }> {
  const url = await serviceUrl();
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const r = await httpGet(url);
      const body = JSON.parse(r.body);
      if (body.version === version) return { status: r.status, body };
      last = `version ${body.version}`;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`the service never answered version ${version}: ${String(last)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function serviceUrl(): Promise<string> {
  const kc = new KubeConfig();
  kc.loadFromFile(cluster.kubeconfig);
  const svcs = await kc.makeApiClient(CoreV1Api).listNamespacedService({ namespace: NS });
  const svc = svcs.items.find((s) => s.metadata?.name?.includes('shop'))!;
  return `http://${svc.spec!.clusterIP}:${svc.spec!.ports![0]!.port}/shop/`;
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'svcbuild-deploy-'));
  env = { SVCBUILD_REGISTRY: registry, SVCBUILD_STATE_DIR: join(work, 'state') };
  cluster = await startCluster({ registry });
  const kc = new KubeConfig();
  kc.loadFromFile(cluster.kubeconfig);
  await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: NS } } });
}, 1_500_000);

afterAll(async () => {
  await cluster?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('svcbuild deploy on the bed', () => {
  it('installs the published chart and the service answers through its Service', { timeout: 600_000 }, async () => {
    // GIVEN a build of version 1 WHEN it is deployed
    const v1 = await buildVersion('1');
    const d = await deploy(v1);
    // THEN helm reports revision 1 and the service answers under its route
    expect(d.code, d.output).toBe(0);
    expect(d.revision).toBe('1');
    const r = await answerOf('1');
    expect(r.status).toBe(200);
    expect(r.body.version).toBe('1');
  });

  it('upgrades to a new build', { timeout: 600_000 }, async () => {
    const v2 = await buildVersion('2');
    const d = await deploy(v2);
    expect(d.code, d.output).toBe(0);
    expect(d.revision).toBe('2');
    expect((await answerOf('2')).status).toBe(200);
  });

  it('rolls back a build that never becomes ready; the old version keeps serving', { timeout: 600_000 }, async () => {
    // GIVEN a build whose process exits at once
    const v3 = await buildVersion('3', true);
    // WHEN it is deployed with a short wait
    const d = await deploy(v3, ['--timeout=45s']);
    // THEN the deploy fails as the project's fault (exit 7), and version 2 still answers
    expect(d.code, d.output).toBe(7);
    expect(d.revision).toBeUndefined();
    const r = await httpGet(await serviceUrl());
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body).version).toBe('2');
  });
});
