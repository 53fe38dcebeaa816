/**
 * Overlay bench: layer-based overlay computation from the registry vs the seed's method
 * (hash every file of the base env after install and diff with the base manifest).
 *
 *   npx tsx bench/overlay.ts [sizes...]     (default: 1000 10000 50000 base env files)
 *
 * For each size: a synthetic base image with a venv-like tree of N files (~1.5 KiB each) and
 * its sha256 manifest, and an image adding one layer of ~200 files under /project.
 *  (a1) computeOverlay, layer only touching /project: the base layers are never read.
 *  (a2) computeOverlay, layer also carrying parent dirs outside /project (as real builds do)
 *       and the env manifest check: the base layers are streamed once (headers + the few
 *       files needed), nothing written to disk.
 *  (b)  the seed's method: extract base + layer to a temp dir (once), then sha256 every file of the
 *       env and compare with the manifest; "hash" is the hashing part alone (one run each, page
 *       cache warm, which favours it). (a) timings are the median of 3 runs.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { extract } from 'tar-stream';
import { computeOverlay } from '../src/overlay/index.js';
import { decompressLayer } from '../src/overlay/tar.js';
import { RegistryClient } from '../src/registry/client.js';
import { startRegistry } from '../test/helpers/registry.js';
import { makeLayer, pushImage, type Layer, type TarSpec } from '../test/overlay/image-builder.js';

const VENV = 'home/user/the_venv';
const SITE = `${VENV}/lib/python3.13/site-packages`;
const user = { uid: 1000, gid: 1000 };

function fileContent(i: number): Buffer {
  // Half text, half incompressible, like a mix of .py and .so files.
  return Buffer.concat([Buffer.from(`# module ${i}\n${'x = 1\n'.repeat(120)}`), randomBytes(768)]);
}

function baseEnv(n: number): { entries: TarSpec[]; manifest: string } {
  const entries: TarSpec[] = [
    { path: 'home/', type: 'directory' },
    { path: 'home/user/', type: 'directory', ...user },
    { path: `${VENV}/`, type: 'directory', ...user },
    { path: `${VENV}/lib/`, type: 'directory', ...user },
    { path: `${VENV}/lib/python3.13/`, type: 'directory', ...user },
    { path: `${SITE}/`, type: 'directory', ...user },
    { path: 'project/', type: 'directory', ...user },
  ];
  const lines: string[] = ['d - lib', 'd - lib/python3.13', 'd - lib/python3.13/site-packages'];
  const perPkg = 50;
  for (let i = 0; i < n; i++) {
    const pkg = `pkg${Math.floor(i / perPkg)}`;
    if (i % perPkg === 0) {
      entries.push({ path: `${SITE}/${pkg}/`, type: 'directory', ...user });
      lines.push(`d - lib/python3.13/site-packages/${pkg}`);
    }
    const content = fileContent(i);
    entries.push({ path: `${SITE}/${pkg}/mod${i}.py`, content, ...user });
    lines.push(`f ${createHash('sha256').update(content).digest('hex')}:644 lib/python3.13/site-packages/${pkg}/mod${i}.py`);
  }
  lines.sort((a, b) => (a.split(' ')[2] as string).localeCompare(b.split(' ')[2] as string));
  entries.push({ path: `${VENV}.sha256`, content: lines.join('\n') + '\n', ...user });
  return { entries, manifest: lines.join('\n') + '\n' };
}

function projectLayer(withParents: boolean): TarSpec[] {
  const entries: TarSpec[] = withParents
    ? [
        { path: 'home/', type: 'directory' },
        { path: 'home/user/', type: 'directory', ...user },
        { path: `${VENV}/`, type: 'directory', ...user },
        { path: `${VENV}/lib/`, type: 'directory', ...user },
        { path: `${VENV}/lib/python3.13/`, type: 'directory', ...user },
        { path: `${SITE}/`, type: 'directory', ...user },
      ]
    : [];
  entries.push({ path: 'project/', type: 'directory', ...user });
  entries.push({ path: 'project/the_venv/', type: 'directory', ...user });
  entries.push({ path: 'project/the_venv/newpkg/', type: 'directory', ...user });
  for (let i = 0; i < 200; i++) entries.push({ path: `project/the_venv/newpkg/m${i}.py`, content: fileContent(1_000_000 + i), ...user });
  return entries;
}

/** Extracts layers into a directory (regular files, dirs, symlinks, whiteouts), like a builder's rootfs. */
async function extractLayers(layers: Layer[], root: string): Promise<void> {
  for (const layer of layers) {
    const ex = extract();
    (await decompressLayer(Readable.from([layer.blob]))).pipe(ex);
    for await (const entry of ex) {
      const h = entry.header;
      const p = join(root, h.name);
      const base = h.name.split('/').filter(Boolean).at(-1) ?? '';
      if (base.startsWith('.wh.')) {
        await rm(join(dirname(p), base.slice(4)), { recursive: true, force: true });
        entry.resume();
        continue;
      }
      if (h.type === 'directory') {
        await mkdir(p, { recursive: true, mode: h.mode });
        entry.resume();
      } else if (h.type === 'symlink') {
        await mkdir(dirname(p), { recursive: true });
        await symlink(h.linkname, p);
        entry.resume();
      } else {
        const chunks: Buffer[] = [];
        for await (const c of entry) chunks.push(c as Buffer);
        await mkdir(dirname(p), { recursive: true });
        await writeFile(p, Buffer.concat(chunks), { mode: h.mode });
      }
    }
  }
}

/** The seed's check: sha256 every file of the env and compare with the manifest. */
async function diffEnvWithManifest(envRoot: string, manifest: string): Promise<{ changed: number; added: number }> {
  const want = new Map<string, string>();
  for (const line of manifest.split('\n')) {
    if (!line) continue;
    const [kind, digest, rel] = line.split(' ', 3) as [string, string, string];
    want.set(rel, `${kind} ${digest}`);
  }
  let changed = 0;
  let added = 0;
  const walk = async (dir: string, rel: string): Promise<void> => {
    for (const name of (await readdir(dir)).sort()) {
      const full = join(dir, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = await lstat(full);
      let got: string;
      if (st.isSymbolicLink()) got = `l ${await readlink(full)}`;
      else if (st.isDirectory()) {
        got = 'd -';
        await walk(full, r);
      } else {
        const h = createHash('sha256');
        for await (const c of createReadStream(full)) h.update(c as Buffer);
        got = `f ${h.digest('hex')}:${(st.mode & 0o7777).toString(8)}`;
      }
      const w = want.get(r);
      if (w === undefined) added++;
      else if (w !== got) changed++;
    }
  };
  await walk(envRoot, '');
  return { changed, added };
}

async function timeOnce<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t = performance.now();
  const v = await fn();
  return [performance.now() - t, v];
}

/** Median of three runs (the first also warms the JIT and the page cache). */
async function time<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const times: number[] = [];
  let v: T | undefined;
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    v = await fn();
    times.push(performance.now() - t);
  }
  return [times.sort((a, b) => a - b)[1] as number, v as T];
}

async function main(): Promise<void> {
  const sizes = process.argv
    .slice(2)
    .map(Number)
    .filter((n) => n > 0);
  if (!sizes.length) sizes.push(1000, 10_000, 50_000);
  const reg = await startRegistry();
  const client = new RegistryClient({ host: reg.host, plainHttp: true });
  const rows: string[][] = [];
  try {
    for (const n of sizes) {
      const env = baseEnv(n);
      const base = await makeLayer(env.entries);
      const only = await makeLayer(projectLayer(false));
      const parents = await makeLayer(projectLayer(true));
      await pushImage(client, `bench/base${n}`, 'v1', [base]);
      await pushImage(client, `bench/app${n}`, 'only', [base, only]);
      await pushImage(client, `bench/app${n}`, 'parents', [base, parents]);

      const [a1, r1] = await time(() => computeOverlay({ client, base: `bench/base${n}:v1`, image: `bench/app${n}:only` }));
      const [a2, r2] = await time(() =>
        computeOverlay({
          client,
          base: `bench/base${n}:v1`,
          image: `bench/app${n}:parents`,
          envManifests: [{ root: `/${VENV}`, path: `/${VENV}.sha256` }],
        }),
      );
      if (r1.entries.length !== 202 || r2.entries.length !== 202)
        throw new Error(`unexpected overlay sizes ${r1.entries.length} ${r2.entries.length}`);
      if (r1.layersRead.base !== 0 || r2.layersRead.base !== 1)
        throw new Error(`unexpected base reads ${r1.layersRead.base} ${r2.layersRead.base}`);

      const dir = await mkdtemp(join(tmpdir(), 'svcbuild-bench-'));
      try {
        const [ex] = await timeOnce(() => extractLayers([base, parents], dir));
        const [hash, diff] = await timeOnce(() => diffEnvWithManifest(join(dir, VENV), env.manifest));
        if (diff.changed !== 0 || diff.added !== 0) throw new Error(`seed method found changes: ${JSON.stringify(diff)}`);
        const b = ex + hash;
        rows.push([
          String(n),
          `${(base.blob.length / 1048576).toFixed(1)} MiB`,
          a1.toFixed(0),
          a2.toFixed(0),
          ex.toFixed(0),
          hash.toFixed(0),
          b.toFixed(0),
          `${(b / a1).toFixed(1)}x`,
          `${(b / a2).toFixed(1)}x`,
          `${(hash / a2).toFixed(1)}x`,
        ]);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
      process.stderr.write(`done: ${n} files\n`);
    }
  } finally {
    await reg.stop();
  }
  const head = ['base files', 'base gz', 'a1 ms', 'a2 ms', 'b extract ms', 'b hash ms', 'b total ms', 'b/a1', 'b/a2', 'hash/a2'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const fmt = (r: string[]) => r.map((c, i) => c.padStart(widths[i] as number)).join('  ');
  console.log(fmt(head));
  for (const r of rows) console.log(fmt(r));
}

await main();
