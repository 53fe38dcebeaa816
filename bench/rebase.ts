/**
 * bench/rebase: moving a service onto a new base image by rebase (registry operations, no
 * install) against a full rebuild of the same service on that base, in one run.
 *
 * Each round makes a new python base (the catalog's python-3.13 with a new label, so a new
 * digest: what a base refresh looks like to a service; built untimed), then times
 *   rebase:  svcbuild rebase onto it (includes the overlay check and the chart publish)
 *   rebuild: svcbuild build on it (the dependency layer is not cached for a new base)
 * Run: npx tsx bench/rebase.ts [rounds=3]
 */
import { cp, mkdtemp, rm, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadConfig } from '../src/config/load.js';
import { silentReporter, type StepRecord } from '../src/domain/progress.js';
import { Buildah } from '../src/executors/local/buildah.js';
import { BaseImages } from '../src/executors/local/base-images.js';
import { LocalBuilder } from '../src/executors/local/build.js';
import { localSteps } from '../src/executors/local/index.js';
import { rebaseService } from '../src/executors/local/rebase.js';
import { startLocalRegistry } from '../src/executors/local/registry-server.js';

const ROOT = resolve(import.meta.dirname, '..');
const rounds = Number(process.argv[2] ?? 3);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const base = await loadConfig({ cwd: process.cwd(), env: process.env, home: ROOT });
await startLocalRegistry(base.stateDir, base.registry.host);
const imagesDir = await mkdtemp(join(tmpdir(), 'svcbuild-bench-bases-'));
await cp(join(ROOT, 'base-images'), imagesDir, { recursive: true });
const buildah = new Buildah({ tlsVerify: !base.registry.plainHttp, isolation: base.build.isolation });
const rebaseTimes: number[] = [];
const rebuildTimes: number[] = [];
try {
  const catalog = { ...base.baseImages };
  for (let i = 0; i <= rounds; i++) catalog[`python-3.13-p${i}`] = { ...base.baseImages['python-3.13']!, dir: `python-p${i}` };
  const config = { ...base, baseImagesDir: imagesDir, baseImages: catalog };
  const steps = localSteps(config, ROOT);
  const builder = new LocalBuilder({ config, reporter: silentReporter, steps, buildah });
  const bases = new BaseImages(config, buildah);
  const nonce = Date.now();
  for (let i = 0; i <= rounds; i++) {
    await cp(join(imagesDir, 'python'), join(imagesDir, `python-p${i}`), { recursive: true });
    await appendFile(join(imagesDir, `python-p${i}`, 'Dockerfile'), `LABEL io.svcbuild.bench.refresh="${nonce}-${i}"\n`);
  }
  // The service, built on the first base (untimed).
  await builder.build({ projectDir: join(ROOT, 'examples/python-hello'), name: 'bench-rebase', base: 'python-3.13-p0' });
  for (let i = 1; i <= rounds; i++) {
    const s: StepRecord[] = [];
    await bases.ensure(`python-3.13-p${i}`, silentReporter, s); // the refreshed base (untimed)
    let t = performance.now();
    await rebaseService(config, { buildah, steps, reporter: silentReporter }, { service: 'bench-rebase', base: `python-3.13-p${i}` });
    rebaseTimes.push((performance.now() - t) / 1000);
    t = performance.now();
    await builder.build({ projectDir: join(ROOT, 'examples/python-hello'), name: 'bench-rebuild', base: `python-3.13-p${i}` });
    rebuildTimes.push((performance.now() - t) / 1000);
  }
} finally {
  await rm(imagesDir, { recursive: true, force: true });
}
console.log(`\nbench/rebase: python-hello onto a refreshed base, median of ${rounds} rounds`);
console.log(`rebase   ${median(rebaseTimes).toFixed(2)}s   (runs: ${rebaseTimes.map((x) => x.toFixed(2)).join(', ')})`);
console.log(`rebuild  ${median(rebuildTimes).toFixed(2)}s   (runs: ${rebuildTimes.map((x) => x.toFixed(2)).join(', ')})`);
console.log(`ratio    ${(median(rebuildTimes) / median(rebaseTimes)).toFixed(1)}x  (target 10x)`);
