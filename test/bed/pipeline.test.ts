/**
 * Level 3 of the cluster test bed (issue 7): the whole pipeline in the cluster. The example
 * projects go through the HTTP API (argo executor) as a platform user submits them
 * (`svcbuild submit --watch`); Argo runs the svcbuild-build WorkflowTemplate installed by
 * `svcbuild install`: the source step, Kaniko (built here from the chainguard-dev fork), Trivy
 * with an offline DB from the registry, the overlay step, the chart publish and the helm
 * deploy; the deployed service answers through its Service.
 *
 * Everything is real and built on this machine: apiserver, node, controller, argoexec, the
 * step and Kaniko images (scripts/build-images.sh), the base images. Needs root and what
 * test/bed/argo.test.ts needs; the first run on a machine builds the images (minutes).
 */
import { request as httpRequest } from 'node:http';
import { appendFile, cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppsV1Api, CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { TokenStore } from '../../src/api/tokens.js';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { registryClientFor } from '../../src/registry/client.js';
import { pushTrivyDb } from '../../src/scan/db.js';
import { startServer, type Running } from '../../src/server.js';
import { buildFixtureDb } from '../scan/fixture-db.js';
import { ROOT, svcbuild } from '../helpers/cli.js';
import {
  BED_GATEWAY,
  startArgo,
  startCluster,
  startPipeline,
  type TestArgo,
  type TestCluster,
  type TestPipeline,
} from '../helpers/kube.js';
import { freePort } from '../helpers/registry.js';

const registry = inject('registryHost');
const ARGO = { group: 'argoproj.io', version: 'v1alpha1' };
/**
 * The run dir of a bed `npm run bed:up` started, to run on instead of a private bed
 * (scripts/bed/e2e.sh, i.e. `npm run test:e2e`, sets it when that bed runs); its tenant is
 * `demo` unless SVCBUILD_E2E_TENANT says otherwise.
 */
const REUSE = process.env.SVCBUILD_E2E_BED_RUN;
const TENANT = REUSE ? (process.env.SVCBUILD_E2E_TENANT ?? 'demo') : 'acme';
const TENANT_NS = `tenant-${TENANT}`;

interface WorkflowNode {
  displayName: string;
  type: string;
  phase: string;
  message?: string;
  templateName?: string;
}
interface Workflow {
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  status?: {
    phase?: string;
    message?: string;
    nodes?: Record<string, WorkflowNode>;
    outputs?: { parameters?: { name: string; value?: string }[] };
  };
}
interface Build {
  id: string;
  status: string;
  /** The service name the user gave (or the project's). */
  service: string;
  /** `<tenant>-<service>`: the image repository's last part and the release name. */
  qualifiedService: string;
  error?: { message: string };
  steps?: { name: string; status: string }[];
}

function httpGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = httpRequest(url, { timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', () => resolve({ status: 0, body: '' }));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

describe('test bed level 3: the example projects through the API, built, scanned and deployed in the cluster', () => {
  let cluster: TestCluster | undefined;
  let argo: TestArgo | undefined;
  let pipeline: TestPipeline | undefined;
  let kubeconfig: string;
  let config: Config;
  let server: Running;
  let api: string;
  let token: string;
  let dbDir: string | undefined;
  let db: { repo: string; digest: string } | undefined;

  beforeAll(async () => {
    let configFile: string;
    if (REUSE) {
      kubeconfig = join(REUSE, 'admin.kubeconfig');
      configFile = join(REUSE, 'pipeline', 'svcbuild.yaml');
    } else {
      const podRegistry = `${BED_GATEWAY}:${await freePort()}`;
      cluster = await startCluster({ registry, pipelineRegistry: podRegistry });
      argo = await startArgo(cluster, { registry });
      pipeline = await startPipeline(cluster, { registry: podRegistry, tenants: [TENANT] });
      kubeconfig = cluster.kubeconfig;
      configFile = pipeline.configFile;
    }
    config = await loadConfig({ cwd: ROOT, home: ROOT, env: { SVCBUILD_CONFIG: configFile } });
    server = await startServer(config, ROOT, { port: 0 });
    api = `http://127.0.0.1:${server.port}`;
    token = await new TokenStore(join(config.stateDir, 'tokens.json')).create(TENANT);
  }, 3_000_000);

  afterAll(async () => {
    await server?.close();
    // A reused bed gets its registry back without the fixture DB.
    if (REUSE && db) await registryClientFor(config.registry).deleteManifest(db.repo, db.digest);
    await pipeline?.stop();
    await argo?.stop();
    await cluster?.stop();
    if (dbDir) await rm(dbDir, { recursive: true, force: true });
  });

  function clients(): { core: CoreV1Api; apps: AppsV1Api; custom: CustomObjectsApi } {
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfig);
    return { core: kc.makeApiClient(CoreV1Api), apps: kc.makeApiClient(AppsV1Api), custom: kc.makeApiClient(CustomObjectsApi) };
  }

  async function submit(dir: string): Promise<{ code: number; build: Build; output: string }> {
    const r = await svcbuild(['submit', dir.startsWith('/') ? dir : join(ROOT, 'examples', dir), '--server', api, '--token', token, '--watch', '--json'], {});
    const json = r.stdout.slice(r.stdout.indexOf('{'));
    return { code: r.code, build: JSON.parse(json) as Build, output: r.output };
  }

  async function workflow(id: string): Promise<Workflow> {
    return (await clients().custom.getNamespacedCustomObject({
      ...ARGO,
      namespace: config.executor.buildNamespace,
      plural: 'workflows',
      name: id,
    })) as Workflow;
  }

  function steps(wf: Workflow): Record<string, string> {
    const out: Record<string, string> = {};
    for (const n of Object.values(wf.status?.nodes ?? {})) if (n.type === 'Pod') out[n.displayName.replace(/\(\d+\)$/, '')] = n.phase;
    return out;
  }

  function output(wf: Workflow, name: string): string | undefined {
    return wf.status?.outputs?.parameters?.find((p) => p.name === name)?.value;
  }

  /** GETs `path` through the ClusterIP Service of the release (kube-proxy's rules on the host). */
  async function serviceAnswers(name: string, path: string): Promise<{ status: number; body: string }> {
    const { core } = clients();
    const list = await core.listNamespacedService({ namespace: TENANT_NS });
    const svc = list.items.find((s) => s.metadata?.name === name) ?? list.items.find((s) => s.metadata?.name?.includes(name));
    if (!svc) throw new Error(`no Service for ${name} in ${TENANT_NS}: ${list.items.map((s) => s.metadata?.name).join(', ')}`);
    const url = `http://${svc.spec!.clusterIP}:${svc.spec!.ports![0]!.port}${path}`;
    let last = { status: 0, body: '' };
    for (let i = 0; i < 30; i++) {
      last = await httpGet(url);
      if (last.status === 200) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    return last;
  }

  it('builds python-hello with Kaniko, runs the overlay step and deploys it; the scan step reports it was skipped (no DB yet)', { timeout: 1_200_000 }, async () => {
    // GIVEN the pipeline installed, no vulnerability DB in the registry yet
    // WHEN a platform user submits examples/python-hello through the API and follows it
    const { code, build, output: log } = await submit('python-hello');

    // THEN the build succeeds
    expect(code, log).toBe(0);
    expect(build.status).toBe('succeeded');
    // AND the user followed each step's log: Kaniko's push, the deploy's revision (a build
    // that a reused bed already had is only read back, its pods may be gone)
    if (!REUSE) {
      expect(log).toMatch(/^\[build\] .*Pushed /m);
      expect(log).toMatch(new RegExp(`^\\[deploy\\] deployed ${build.qualifiedService} in ${TENANT_NS}: revision \\d+$`, 'm'));
    }
    const wf = await workflow(build.id);
    expect(wf.status?.phase).toBe('Succeeded');
    expect(steps(wf)).toMatchObject({
      source: 'Succeeded',
      build: 'Succeeded',
      scan: 'Succeeded',
      overlay: 'Succeeded',
      publish: 'Succeeded',
      deploy: 'Succeeded',
      'final-status': 'Succeeded',
    });
    // AND the Workflow carries what an operator looks for: title, labels, outputs
    expect(wf.metadata.annotations?.['workflows.argoproj.io/title']).toBe(`build ${TENANT}/${build.service}`);
    expect(wf.metadata.labels).toMatchObject({
      'svcbuild.io/tenant': TENANT,
      'svcbuild.io/service': build.service,
      'svcbuild.io/language': 'python',
    });
    const imageDigest = output(wf, 'image-digest');
    const overlayDigest = output(wf, 'overlay-digest');
    expect(imageDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(overlayDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(JSON.parse(output(wf, 'scan-summary') ?? '{}')).toEqual({
      skipped: `skipped: no vulnerability DB at ${config.registry.host}/trivy-db:2 (mirror one there, or set scan.enabled: false)`,
    });

    // AND the image Kaniko pushed (build-<id>) is in the registry and promoted (release-<id>)
    // (the build id of the tags is the Workflow's build-id parameter, also its label)
    const buildId = wf.metadata.labels?.['svcbuild.io/build-id'];
    expect(build.id.endsWith(`-${buildId}`)).toBe(true);
    const client = registryClientFor(config.registry);
    const repo = `${config.registry.namespace}/${build.qualifiedService}`;
    const tags = await client.listTags(repo);
    expect(tags).toEqual(expect.arrayContaining([`build-${buildId}`, `release-${buildId}`]));
    expect((await client.getManifest(repo, `release-${buildId}`)).digest).toBe(imageDigest);
    expect((await client.getManifest(repo, `build-${buildId}`)).digest).toBe(imageDigest);

    // AND the deployed service answers HTTP 200 through its Service, running that image
    const { apps } = clients();
    const deps = await apps.listNamespacedDeployment({ namespace: TENANT_NS });
    const dep = deps.items.find((d) => d.metadata?.name?.includes(build.service));
    expect(dep?.spec?.template.spec?.containers.map((c) => c.image)).toContain(`${config.registry.host}/${repo}@${imageDigest}`);
    const r = await serviceAnswers(build.service, `/${build.service}/`);
    expect(r.status, r.body).toBe(200);
  });

  it('scans node-hello with the Trivy DB from the registry: a MEDIUM finding passes the HIGH gate and the service answers', { timeout: 1_200_000 }, async () => {
    // GIVEN the fixture vulnerability DB mirrored into the pipeline's registry
    dbDir = await mkdtemp(join(tmpdir(), 'svcbuild-bed-db-'));
    const pushed = await pushTrivyDb(registryClientFor(config.registry), 'trivy-db', await readFile(await buildFixtureDb(dbDir)), '2');
    db = { repo: 'trivy-db', digest: pushed.digest };

    // WHEN examples/node-hello is submitted
    const { code, build, output: log } = await submit('node-hello');

    // THEN it is scanned (one new MEDIUM finding: nanoid's fixture advisory, below the gate),
    // deployed, and answers
    expect(code, log).toBe(0);
    const wf = await workflow(build.id);
    expect(steps(wf)).toMatchObject({ build: 'Succeeded', scan: 'Succeeded', overlay: 'Succeeded', deploy: 'Succeeded' });
    expect(JSON.parse(output(wf, 'scan-summary') ?? '{}')).toMatchObject({
      gate: 'pass',
      threshold: 'HIGH',
      counts: { new: { CRITICAL: 0, HIGH: 0, MEDIUM: 1 } },
      blocking: [],
      scanner: 'trivy 0.74.0',
    });
    expect(wf.metadata.labels?.['svcbuild.io/language']).toBe('node');
    const r = await serviceAnswers(build.service, `/${build.service}/`);
    expect(r.status, r.body).toBe(200);
  });

  it('stops python-hello at the scan gate once the DB knows its HIGH werkzeug advisory: nothing deployed, the build tag deleted', { timeout: 1_200_000 }, async () => {
    // GIVEN the DB (previous test) and a changed python-hello source (the same source would
    // be the same build)
    const dir = join(dbDir!, 'python-hello');
    await cp(join(ROOT, 'examples', 'python-hello'), dir, { recursive: true });
    await appendFile(join(dir, 'main.py'), '\n# changed\n');
    // WHEN it is submitted again
    const { code, build, output: log } = await submit(dir);

    // THEN the build fails at the scan gate and says why
    expect(code, log).not.toBe(0);
    expect(build.status).toBe('failed');
    const wf = await workflow(build.id);
    expect(wf.status?.phase).toBe('Failed');
    expect(steps(wf)).toMatchObject({ build: 'Succeeded', scan: 'Failed' });
    expect(steps(wf).deploy).toBeUndefined();
    expect(log).toContain('CVE-2099-2001');
    // AND the unpromoted image is deleted by the exit handler
    const client = registryClientFor(config.registry);
    const buildId = wf.metadata.labels?.['svcbuild.io/build-id'];
    const tags = await client.listTags(`${config.registry.namespace}/${build.qualifiedService}`);
    // Kaniko pushed build-<id> (the build step succeeded); the exit handler deleted it and
    // nothing was promoted
    expect(steps(wf)['delete-unpromoted-image']).toBe('Succeeded');
    expect(build.id).toBe(`${build.qualifiedService}-${buildId}`);
    expect(tags.length).toBeGreaterThan(0);
    expect(tags).not.toContain(`build-${buildId}`);
    expect(tags).not.toContain(`release-${buildId}`);
  });
});
