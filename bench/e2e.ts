/**
 * bench/e2e: the test bed end to end, in one run.
 *
 *   bed setup     a private single-node cluster from the cached components (etcd,
 *                 kube-apiserver with Argo's CRDs, containerd, kubelet, kube-proxy, ...)
 *   first deploy  build examples/node-hello (cold dependency layer) + svcbuild deploy
 *                 (helm upgrade --install --wait) until its Service answers
 *   warm deploy   a source-only change: rebuild (dependency layer cached) + deploy
 *
 * Builds run with the local executor; in-cluster builds (Argo + Kaniko) are level 3 of the
 * bed, not reached yet. Run: npx tsx bench/e2e.ts   (as root; takes a few minutes)
 */
import { appendFile, cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { run } from '../src/util/exec.js';
import { startCluster } from '../test/helpers/kube.js';
import { startRegistry } from '../test/helpers/registry.js';

const ROOT = resolve(import.meta.dirname, '..');
const CLI = join(ROOT, 'bin/svcbuild.js');

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

const registry = await startRegistry();
const work = await mkdtemp(join(tmpdir(), 'svcbuild-bench-e2e-'));
const env = { ...process.env, SVCBUILD_REGISTRY: registry.host, SVCBUILD_STATE_DIR: join(work, 'state') };
const svcbuild = async (args: string[], extra: Record<string, string> = {}) => {
  const r = await run(process.execPath, [CLI, ...args], { env: { ...env, ...extra } });
  if (r.code !== 0) throw new Error(`svcbuild ${args[0]} failed:\n${r.output}`);
  return r.stdout;
};
const rows: Array<[string, number]> = [];
let cluster: Awaited<ReturnType<typeof startCluster>> | undefined;
try {
  // Base images into this registry first (untimed: they are the platform's, built once).
  await svcbuild(['base', 'build', 'node-22']);
  const t = performance.now();
  cluster = await startCluster({ registry: registry.host });
  rows.push(['bed setup (cached components)', (performance.now() - t) / 1000]);
  const kc = new KubeConfig();
  kc.loadFromFile(cluster.kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: 'bench' } } });
  const src = join(work, 'src');
  await cp(join(ROOT, 'examples/node-hello'), src, { recursive: true });
  await appendFile(join(src, 'package.json'), '\n');
  const deployOnce = async (label: string) => {
    const t0 = performance.now();
    const build = JSON.parse(await svcbuild(['build', src, '--name', 'bench', '--json']));
    const out = join(work, `out-${rows.length}`);
    await svcbuild(
      [
        'deploy',
        `--chart=${build.chart.ref}:${build.chart.version}@${build.chart.digest}`,
        '--namespace=bench',
        '--tenant=local',
        '--service=bench',
        '--wait',
        '--rollback-on-failure',
        `--outputs=${out}`,
      ],
      { KUBECONFIG: cluster!.kubeconfig },
    );
    const svc = (await core.listNamespacedService({ namespace: 'bench' })).items[0]!;
    const url = `http://${svc.spec!.clusterIP}/bench/`;
    while ((await get(url)) !== 200) await new Promise((r) => setTimeout(r, 100));
    rows.push([label, (performance.now() - t0) / 1000]);
    return (await readFile(join(out, 'revision'), 'utf8')).trim();
  };
  await deployOnce('first build + deploy');
  await appendFile(join(src, 'server.js'), `\n// ${Date.now()}\n`);
  await deployOnce('warm rebuild + deploy');
} finally {
  await cluster?.stop();
  await registry.stop();
  await rm(work, { recursive: true, force: true });
}
console.log('\nbench/e2e (single run; seconds)');
for (const [k, v] of rows) console.log(`${k.padEnd(32)} ${v.toFixed(1).padStart(7)}`);
