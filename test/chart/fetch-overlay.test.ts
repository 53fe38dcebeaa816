import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, runOk } from '../../src/util/exec.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { SERVICE_CHART } from './helm.js';

const SCRIPT = join(SERVICE_CHART, 'files', 'fetch-overlay.sh');
const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function pushBlob(host: string, repo: string, body: Buffer): Promise<string> {
  const digest = sha(body);
  const start = await fetch(`http://${host}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  const location = new URL(start.headers.get('location')!, `http://${host}`);
  location.searchParams.set('digest', digest);
  const put = await fetch(location, { method: 'PUT', body: new Uint8Array(body), headers: { 'content-type': 'application/octet-stream' } });
  if (put.status !== 201) throw new Error(`blob upload: ${put.status}`);
  return digest;
}

/** Pushes a zip as an svcbuild overlay artifact; returns the manifest digest. */
async function pushOverlay(host: string, repo: string, zip: Buffer): Promise<string> {
  const empty = Buffer.from('{}');
  const configDigest = await pushBlob(host, repo, empty);
  const zipDigest = await pushBlob(host, repo, zip);
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    artifactType: 'application/vnd.svcbuild.overlay.v1',
    config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: configDigest, size: empty.length },
    layers: [{ mediaType: 'application/zip', digest: zipDigest, size: zip.length }],
  });
  const digest = sha(manifest);
  const res = await fetch(`http://${host}/v2/${repo}/manifests/${digest}`, {
    method: 'PUT',
    body: manifest,
    headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
  });
  if (res.status !== 201) throw new Error(`manifest upload: ${res.status} ${await res.text()}`);
  return digest;
}

describe('files/fetch-overlay.sh (the overlay init container)', () => {
  let registry: TestRegistry;
  let work: string;
  let zip: Buffer;
  beforeAll(async () => {
    registry = await startRegistry();
    work = await mkdtemp(join(tmpdir(), 'svcbuild-fetch-overlay-test-'));
    const src = join(work, 'src');
    await mkdir(join(src, 'app', 'bin'), { recursive: true });
    await writeFile(join(src, 'app', 'main.py'), 'print("hi")\n');
    await writeFile(join(src, 'app', 'bin', 'run'), '#!/bin/sh\necho run\n', { mode: 0o755 });
    await runOk('zip', ['-q', '-r', '-X', join(work, 'overlay.zip'), 'app'], { cwd: src });
    zip = await readFile(join(work, 'overlay.zip'));
  });
  afterAll(async () => {
    await registry?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const env = (digest: string, dest: string) => ({
    ...process.env,
    OVERLAY_REGISTRY: registry.host,
    OVERLAY_REPOSITORY: 'svcbuild/acme-shop',
    OVERLAY_DIGEST: digest,
    OVERLAY_PLAIN_HTTP: 'true',
    OVERLAY_DEST: dest,
  });

  it('pulls the artifact by digest and unzips it with its modes into the destination', async () => {
    // GIVEN an overlay artifact in the registry
    const digest = await pushOverlay(registry.host, 'svcbuild/acme-shop', zip);
    const dest = join(work, 'project');
    // WHEN the script runs as the init container would
    const res = await run('sh', [SCRIPT], { env: env(digest, dest) });
    // THEN the files are in the destination, executable bits kept
    expect(res.code, res.output).toBe(0);
    expect(await readFile(join(dest, 'app', 'main.py'), 'utf8')).toBe('print("hi")\n');
    expect((await stat(join(dest, 'app', 'bin', 'run'))).mode & 0o777).toBe(0o755);
    expect(res.stderr).toContain(`fetch-overlay: unpacked ${sha(zip)} into ${dest} (2 files)`);
  });

  it('fails on a digest the registry does not have, unpacking nothing', async () => {
    // GIVEN a digest that is not in the registry
    const dest = join(work, 'missing');
    // WHEN the script runs
    const res = await run('sh', [SCRIPT], { env: env(`sha256:${'0'.repeat(64)}`, dest) });
    // THEN it fails naming the HTTP status, and the destination was never created
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(
      `fetch-overlay: error: GET manifest http://${registry.host}/v2/svcbuild/acme-shop/manifests/sha256:${'0'.repeat(64)} answered HTTP 404`,
    );
    await expect(stat(dest)).rejects.toThrow(/ENOENT/);
  });
});
