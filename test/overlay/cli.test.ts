import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../../src/cli/main.js';
import { parseConfig } from '../../src/config/schema.js';
import { RegistryClient, sha256Digest } from '../../src/registry/client.js';
import { OVERLAY_ARTIFACT_TYPE } from '../../src/overlay/index.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { makeLayer, pushImage } from './image-builder.js';

function capture() {
  const s = new PassThrough();
  let text = '';
  s.on('data', (c: Buffer) => (text += c.toString()));
  return { stream: s, text: () => text };
}

describe('svcbuild overlay', () => {
  let reg: TestRegistry;
  let work: string;
  let imageDigest: string;
  beforeAll(async () => {
    reg = await startRegistry();
    work = await mkdtemp(join(tmpdir(), 'svcbuild-overlay-cli-'));
    const client = new RegistryClient({ host: reg.host, plainHttp: true });
    const base = await makeLayer([
      { path: 'etc/hosts', content: 'h\n' },
      { path: 'project/', type: 'directory' },
    ]);
    await pushImage(client, 'svcbuild/base', 'v1', [base]);
    const bad = await makeLayer([{ path: 'etc/hosts', content: 'changed\n' }]);
    await pushImage(client, 'svcbuild/bad', 'v1', [base, bad]);
    imageDigest = (
      await pushImage(client, 'svcbuild/app', 'v1', [base, await makeLayer([{ path: 'project/main.py', content: 'print(1)\n' }])])
    ).digest;
  });
  afterAll(async () => {
    await reg?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const run = async (args: string[]) => {
    const stdout = capture();
    const stderr = capture();
    const code = await cli(['overlay', ...args], {
      config: async () => parseConfig({ registry: { host: reg.host } }),
      stdout: stdout.stream,
      stderr: stderr.stream,
    });
    return { code, stdout: stdout.text(), stderr: stderr.text() };
  };

  it('writes, pushes and reports the overlay as JSON', async () => {
    // GIVEN a clean image WHEN the command runs with --out --push --json
    const out = join(work, 'o.zip');
    const r = await run(['--base', 'svcbuild/base:v1', '--image', 'svcbuild/app:v1', '--out', out, '--push', '--json']);
    // THEN exit 0, the zip on disk, and the JSON names the image, zip and artifact
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const zip = await readFile(out);
    const json = JSON.parse(r.stdout) as Record<string, unknown>;
    const client = new RegistryClient({ host: reg.host, plainHttp: true });
    const refs = await client.listReferrers('svcbuild/app', imageDigest, OVERLAY_ARTIFACT_TYPE);
    expect(json).toEqual({
      image: `${reg.host}/svcbuild/app@${imageDigest}`,
      digest: sha256Digest(zip),
      bytes: zip.length,
      entries: [{ path: 'main.py', type: 'file', mode: '0644' }],
      out,
      artifact: refs[0]?.digest,
    });
  });

  it('exits 7 listing the changed paths, and 2 on missing options', async () => {
    // GIVEN an image that modifies /etc/hosts WHEN the command runs THEN exit 7 naming it
    const r = await run(['--base', 'svcbuild/base:v1', '--image', 'svcbuild/bad:v1']);
    expect(r.code).toBe(7);
    expect(r.stderr).toContain('  /etc/hosts: modified: base file content changed\n');
    // GIVEN no --image THEN exit 2 naming the option
    const m = await run(['--base', 'svcbuild/base:v1']);
    expect(m.code).toBe(2);
    expect(m.stderr).toContain('  - --image: required');
    // AND --help prints the usage
    expect((await run(['--help'])).stdout).toMatch(/^usage: svcbuild overlay --base REF --image REF/);
  });
});
