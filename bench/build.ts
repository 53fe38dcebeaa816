/**
 * bench/build: a cold build against a warm rebuild after a source-only change, for the
 * Python and Node examples, in one run.
 *
 *   cold: the dependency manifest changed (a unique comment), so the dependency layer is
 *         rebuilt: uv/npm resolve, download and install, and the files are adopted.
 *   warm: only a source file changed, so the dependency layer comes from buildah's cache,
 *         keyed by the hash of the dependency files.
 *
 * Base images are built first (not timed). Run: npx tsx bench/build.ts [runs=3]
 * Uses the configured registry (default 127.0.0.1:5000, started if needed).
 */
import { appendFile, cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadConfig } from '../src/config/load.js';
import { silentReporter } from '../src/domain/progress.js';
import { createLocalBuilder } from '../src/executors/local/index.js';
import { startLocalRegistry } from '../src/executors/local/registry-server.js';

const ROOT = resolve(import.meta.dirname, '..');
const runs = Number(process.argv[2] ?? 3);

const EXAMPLES = [
  { name: 'python-hello', manifest: 'pyproject.toml', comment: '#', source: 'main.py' },
  { name: 'node-hello', manifest: 'package.json', comment: null, source: 'server.js' },
];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  const config = await loadConfig({ cwd: process.cwd(), env: process.env, home: ROOT });
  await startLocalRegistry(config.stateDir, config.registry.host);
  const builder = createLocalBuilder(config, silentReporter, ROOT);
  const rows: string[] = [];
  for (const ex of EXAMPLES) {
    const dir = await mkdtemp(join(tmpdir(), `svcbuild-bench-${ex.name}-`));
    try {
      await cp(join(ROOT, 'examples', ex.name), dir, { recursive: true });
      await builder.build({ projectDir: dir, name: `bench-${ex.name}` }); // base images, untimed
      const cold: number[] = [];
      const warm: number[] = [];
      const coldBuildStep: number[] = [];
      const warmBuildStep: number[] = [];
      for (let i = 0; i < runs; i++) {
        const nonce = `${Date.now()}-${i}`;
        if (ex.comment) await appendFile(join(dir, ex.manifest), `${ex.comment} bench ${nonce}\n`);
        else {
          const { readFile, writeFile } = await import('node:fs/promises');
          const pkg = JSON.parse(await readFile(join(dir, ex.manifest), 'utf8'));
          pkg.description = `bench ${nonce}`;
          await writeFile(join(dir, ex.manifest), JSON.stringify(pkg, null, 2));
        }
        let t = performance.now();
        let r = await builder.build({ projectDir: dir, name: `bench-${ex.name}` });
        cold.push((performance.now() - t) / 1000);
        coldBuildStep.push(r.steps.find((s) => s.name === 'build')!.seconds!);

        await appendFile(join(dir, ex.source), `\n// bench ${nonce}\n`.replace('//', ex.comment ?? '//'));
        t = performance.now();
        r = await builder.build({ projectDir: dir, name: `bench-${ex.name}` });
        warm.push((performance.now() - t) / 1000);
        warmBuildStep.push(r.steps.find((s) => s.name === 'build')!.seconds!);
      }
      rows.push(
        `${ex.name.padEnd(14)} ${median(cold).toFixed(2).padStart(8)}s ${median(warm).toFixed(2).padStart(8)}s ${(median(cold) / median(warm)).toFixed(1).padStart(6)}x   ` +
          `${median(coldBuildStep).toFixed(2).padStart(6)}s ${median(warmBuildStep).toFixed(2).padStart(6)}s`,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  console.log(`\nbench/build: median of ${runs} runs each (whole pipeline; and its build step alone)`);
  console.log(
    `${'example'.padEnd(14)} ${'cold'.padStart(9)} ${'warm'.padStart(9)} ${'ratio'.padStart(7)}   ${'build:cold'.padStart(7)} ${'warm'.padStart(7)}`,
  );
  for (const r of rows) console.log(r);
  console.log('cold = dependency manifest changed (dependency layer rebuilt); warm = source-only change (dependency layer cached)');
}

await main();
