/**
 * bench/e2e: the test bed end to end, in one run, with in-cluster builds (level 3).
 *
 *   bed setup     a private cluster from the cached Go components: etcd + kube-apiserver with
 *                 Argo's CRDs, the node (containerd, kubelet, kube-proxy, ...), Argo's
 *                 controller, then the pipeline (registry on the bridge gateway, the step,
 *                 Kaniko and base images pushed, `svcbuild install`)
 *   first build   examples/node-hello through the API (argo executor): source, Kaniko (cold:
 *                 the npm install layer is built), scan, overlay, publish, helm deploy, until
 *                 its Service answers
 *   warm rebuild  the same service after a source-only change: Kaniko reuses the cached
 *                 dependency layer from the registry, the deploy is an upgrade
 *
 * The figures compare the warm rebuild with the first build (the alternative: rebuilding
 * everything) in the same run. Run as root: npx tsx bench/e2e.ts (takes several minutes).
 */
import { appendFile, cp, mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { TokenStore } from '../src/api/tokens.js';
import { loadConfig } from '../src/config/load.js';
import { startServer, type Running } from '../src/server.js';
import { run } from '../src/util/exec.js';
import {
  BED_GATEWAY,
  startArgo,
  startCluster,
  startPipeline,
  type TestArgo,
  type TestCluster,
  type TestPipeline,
} from '../test/helpers/kube.js';
import { freePort, startRegistry } from '../test/helpers/registry.js';

const ROOT = resolve(import.meta.dirname, '..');
const CLI = join(ROOT, 'bin/svcbuild.js');
const TENANT = 'bench';

function get(url: string): Promise<number> {
  return new Promise((res) => {
    const req = httpRequest(url, { timeout: 3000 }, (r) => {
      r.resume();
      r.on('end', () => res(r.statusCode ?? 0));
    });
    req.on('error', () => res(0));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

const seconds = (t0: number) => (performance.now() - t0) / 1000;
const rows: Array<[string, number]> = [];
/** Per build, the seconds of each pipeline step as the API reports them. */
const stepRows: Array<[string, Record<string, number | null>]> = [];
const registry = await startRegistry();
const work = await mkdtemp(join(tmpdir(), 'svcbuild-bench-e2e-'));
let cluster: TestCluster | undefined;
let argo: TestArgo | undefined;
let pipeline: TestPipeline | undefined;
let server: Running | undefined;
try {
  const podRegistry = `${BED_GATEWAY}:${await freePort()}`;
  let t = performance.now();
  const t0 = t;
  cluster = await startCluster({ registry: registry.host, pipelineRegistry: podRegistry });
  rows.push(['  apiserver + node', seconds(t)]);
  t = performance.now();
  argo = await startArgo(cluster, { registry: registry.host });
  rows.push(['  Argo controller', seconds(t)]);
  t = performance.now();
  pipeline = await startPipeline(cluster, { registry: podRegistry, tenants: [TENANT] });
  rows.push(['  pipeline (images, bases, install)', seconds(t)]);
  rows.unshift(['bed setup (cold start)', seconds(t0)]);

  const config = await loadConfig({ cwd: ROOT, home: ROOT, env: { SVCBUILD_CONFIG: pipeline.configFile } });
  server = await startServer(config, ROOT, { port: 0, log: () => undefined });
  const token = await new TokenStore(join(config.stateDir, 'tokens.json')).create(TENANT);
  const kc = new KubeConfig();
  kc.loadFromFile(cluster.kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  const src = join(work, 'node-hello');
  await cp(join(ROOT, 'examples/node-hello'), src, { recursive: true });

  const buildAndServe = async (label: string) => {
    const t1 = performance.now();
    const r = await run(process.execPath, [
      CLI,
      'submit',
      src,
      '--server',
      `http://127.0.0.1:${server!.port}`,
      '--token',
      token,
      '--watch',
      '--json',
    ]);
    if (r.code !== 0) throw new Error(`${label}: the build failed:\n${r.output}`);
    const built = seconds(t1);
    const final = JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))) as { steps: { name: string; seconds: number | null }[] };
    stepRows.push([label, Object.fromEntries(final.steps.map((st) => [st.name, st.seconds]))]);
    const svc = (await core.listNamespacedService({ namespace: `tenant-${TENANT}` })).items.find((s) =>
      s.metadata?.name?.includes('node-hello'),
    );
    if (!svc) throw new Error(`${label}: no Service in tenant-${TENANT}`);
    const url = `http://${svc.spec!.clusterIP}:${svc.spec!.ports![0]!.port}/node-hello/`;
    while ((await get(url)) !== 200) await new Promise((res) => setTimeout(res, 200));
    rows.push([label, seconds(t1)]);
    rows.push(['  of which the Workflow (submit --watch)', built]);
  };
  await buildAndServe('first build, deployed and answering');
  await appendFile(join(src, 'server.js'), `\n// ${Date.now()}\n`);
  await buildAndServe('warm rebuild (source-only change)');
} finally {
  await server?.close();
  await pipeline?.stop();
  await argo?.stop();
  await cluster?.stop();
  await registry.stop();
  await rm(work, { recursive: true, force: true });
}
console.log('\nbench/e2e (single run; seconds)');
for (const [k, v] of rows) console.log(`${k.padEnd(42)} ${v.toFixed(1).padStart(7)}`);
if (stepRows.length) {
  const names = Object.keys(stepRows[0]![1]);
  console.log(`\nper step (seconds)   ${names.map((n) => n.padStart(8)).join('')}`);
  for (const [label, st] of stepRows) {
    console.log(`${label.slice(0, 20).padEnd(20)} ${names.map((n) => String(st[n] ?? '-').padStart(8)).join('')}`);
  }
}
const first = rows.find(([k]) => k.startsWith('first build'))?.[1];
const warm = rows.find(([k]) => k.startsWith('warm rebuild'))?.[1];
if (first && warm) console.log(`warm rebuild vs first build: ${(first / warm).toFixed(2)}x faster`);
