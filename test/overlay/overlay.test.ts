import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstat, mkdtemp, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BuildError, InputError } from '../../src/errors.js';
import { RegistryClient, sha256Digest } from '../../src/registry/client.js';
import { OVERLAY_ARTIFACT_TYPE, computeOverlay, pushOverlay } from '../../src/overlay/index.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { makeLayer, pushImage, type Layer, type TarSpec } from './image-builder.js';

const hex = (s: string) => createHash('sha256').update(s).digest('hex');
const user = { uid: 1000, gid: 1000 };

const VENV_MANIFEST = [`d - lib`, `f ${hex('base = 1\n')}:644 lib/base.py`, `f ${hex('old = 1\n')}:644 lib/old.py`].join('\n') + '\n';

/** The base: a tiny Debian-like tree with a venv and its manifest, in two layers. */
const BASE_LAYER_1: TarSpec[] = [
  { path: 'etc/', type: 'directory' },
  { path: 'etc/passwd', content: 'root:x:0:0\n' },
  { path: 'etc/motd', content: 'hello\n' },
  { path: 'usr/', type: 'directory' },
  { path: 'usr/bin/', type: 'directory' },
  { path: 'usr/bin/tool', content: '#!/bin/sh\n', mode: 0o755 },
  { path: 'usr/bin/gone', content: 'gone\n', mode: 0o755 },
  { path: 'opt/', type: 'directory' },
  { path: 'opt/data/', type: 'directory' },
  { path: 'opt/data/a.txt', content: 'a\n' },
  { path: 'opt/data/b.txt', content: 'b\n' },
  { path: 'home/', type: 'directory' },
  { path: 'home/user/', type: 'directory', ...user },
  { path: 'home/user/the_venv/', type: 'directory', ...user },
  { path: 'home/user/the_venv/lib/', type: 'directory', ...user },
  { path: 'home/user/the_venv/lib/base.py', content: 'base = 1\n', ...user },
  { path: 'home/user/the_venv/lib/old.py', content: 'old = 1\n', ...user },
  { path: 'home/user/the_venv.sha256', content: VENV_MANIFEST, ...user },
  { path: 'project/', type: 'directory', ...user },
];
const BASE_LAYER_2: TarSpec[] = [{ path: 'usr/bin/.wh.gone' }, { path: 'etc/issue', content: 'Debian\n' }];

describe('computeOverlay against a real registry', () => {
  let reg: TestRegistry;
  let client: RegistryClient;
  let work: string;
  let baseLayers: Layer[];
  beforeAll(async () => {
    reg = await startRegistry();
    client = new RegistryClient({ host: reg.host, plainHttp: true });
    work = await mkdtemp(join(tmpdir(), 'svcbuild-overlay-test-'));
    // The base mixes a gzip layer and an uncompressed one.
    baseLayers = [await makeLayer(BASE_LAYER_1), await makeLayer(BASE_LAYER_2, { gzip: false })];
    await pushImage(client, 'svcbuild/base', 'v1', baseLayers);
  });
  afterAll(async () => {
    await reg?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('lists every violation exactly, and keeps what belongs under /project', async () => {
    // GIVEN an image whose layers add /project files, a hard link, links inside and escaping,
    // a whiteout and an opaque dir under /project, and also touch the base: a modified file,
    // a chmod, an added venv file, a deleted file, an opaque base dir, a deleted venv file
    const layer3 = await makeLayer([
      { path: 'home/', type: 'directory' },
      { path: 'home/user/', type: 'directory', ...user },
      { path: 'home/user/the_venv/', type: 'directory', ...user },
      { path: 'home/user/the_venv/lib/', type: 'directory', ...user },
      { path: 'home/user/the_venv/lib/new.py', content: 'new = 1\n', ...user },
      { path: 'etc/', type: 'directory' },
      { path: 'etc/passwd', content: 'root:x:0:0\nevil:x:0:0\n' },
      { path: 'etc/.wh.motd' },
      { path: 'usr/', type: 'directory' },
      { path: 'usr/bin/', type: 'directory' },
      { path: 'usr/bin/tool', content: '#!/bin/sh\n', mode: 0o777 },
      { path: 'project/', type: 'directory', ...user },
      { path: 'project/app/', type: 'directory', ...user },
      { path: 'project/app/main.py', content: 'print("hi")\n', ...user },
      { path: 'project/app/run.sh', content: '#!/bin/sh\nexec python main.py\n', mode: 0o755, ...user },
      { path: 'project/app/hard', type: 'link', linkname: 'project/app/main.py', ...user },
      { path: 'project/app/old.txt', content: 'old\n', ...user },
      { path: 'project/tmp/', type: 'directory', ...user },
      { path: 'project/tmp/junk.txt', content: 'junk\n', ...user },
      { path: 'project/the_venv/', type: 'directory', ...user },
      { path: 'project/the_venv/lib/', type: 'directory', ...user },
      { path: 'project/the_venv/lib/pkg/', type: 'directory', ...user },
      { path: 'project/the_venv/lib/pkg/__init__.py', content: 'x = 1\n', ...user },
      { path: 'project/link-in', type: 'symlink', linkname: 'app/main.py', ...user },
      { path: 'project/abs-in', type: 'symlink', linkname: '/project/app/main.py', ...user },
      { path: 'project/escape', type: 'symlink', linkname: '../etc/passwd', ...user },
      { path: 'project/escape-abs', type: 'symlink', linkname: '/etc/passwd', ...user },
    ]);
    const layer4 = await makeLayer(
      [
        { path: 'project/tmp/.wh..wh..opq', ...user },
        { path: 'project/tmp/kept.txt', content: 'kept\n', ...user },
        { path: 'project/app/.wh.old.txt', ...user },
        { path: 'opt/data/.wh..wh..opq' },
        { path: 'home/user/the_venv/lib/.wh.old.py', ...user },
      ],
      { gzip: false },
    );
    const img = await pushImage(client, 'svcbuild/bad', 'build-1', [...baseLayers, layer3, layer4]);
    const opts = {
      client,
      base: `${reg.host}/svcbuild/base:v1`,
      image: `${reg.host}/svcbuild/bad@${img.digest}`,
      envManifests: [{ root: '/home/user/the_venv', path: '/home/user/the_venv.sha256' }],
    };

    // WHEN the overlay is computed without failing
    const res = await computeOverlay({ ...opts, failOnViolations: false });

    // THEN the violations are exactly these, sorted by path
    const m = `the base manifest of /home/user/the_venv`;
    expect(res.violations).toEqual([
      { path: '/etc/motd', kind: 'deleted', message: 'base file deleted' },
      { path: '/etc/passwd', kind: 'modified', message: 'base file content changed' },
      { path: '/home/user/the_venv/lib/new.py', kind: 'added', message: 'file added outside /project' },
      { path: '/home/user/the_venv/lib/new.py', kind: 'manifest', message: `not in ${m}: new files belong under /project` },
      { path: '/home/user/the_venv/lib/old.py', kind: 'deleted', message: 'base file deleted' },
      { path: '/home/user/the_venv/lib/old.py', kind: 'manifest', message: `listed in ${m} but deleted` },
      { path: '/opt/data/a.txt', kind: 'deleted', message: 'base file deleted' },
      { path: '/opt/data/b.txt', kind: 'deleted', message: 'base file deleted' },
      { path: '/project/escape', kind: 'symlink-escape', message: 'symlink to ../etc/passwd leaves /project' },
      { path: '/project/escape-abs', kind: 'symlink-escape', message: 'symlink to /etc/passwd leaves /project' },
      { path: '/usr/bin/tool', kind: 'metadata', message: 'mode 0755 -> 0777' },
    ]);
    // AND the overlay holds /project's final state (hard link as content, whiteouts applied)
    const main = Buffer.from('print("hi")\n');
    expect(res.entries).toEqual([
      { path: 'abs-in', type: 'symlink', mode: 0o777, linkname: '/project/app/main.py' },
      { path: 'app', type: 'dir', mode: 0o755 },
      { path: 'app/hard', type: 'file', mode: 0o644, content: main },
      { path: 'app/main.py', type: 'file', mode: 0o644, content: main },
      { path: 'app/run.sh', type: 'file', mode: 0o755, content: Buffer.from('#!/bin/sh\nexec python main.py\n') },
      { path: 'link-in', type: 'symlink', mode: 0o777, linkname: 'app/main.py' },
      { path: 'the_venv', type: 'dir', mode: 0o755 },
      { path: 'the_venv/lib', type: 'dir', mode: 0o755 },
      { path: 'the_venv/lib/pkg', type: 'dir', mode: 0o755 },
      { path: 'the_venv/lib/pkg/__init__.py', type: 'file', mode: 0o644, content: Buffer.from('x = 1\n') },
      { path: 'tmp', type: 'dir', mode: 0o755 },
      { path: 'tmp/kept.txt', type: 'file', mode: 0o644, content: Buffer.from('kept\n') },
    ]);
    expect(res.layersRead).toEqual({ upper: 2, base: 2 });

    // WHEN computed the default way THEN a BuildError of step overlay lists every path
    const err = await computeOverlay(opts).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BuildError);
    expect((err as BuildError).step).toBe('overlay');
    expect((err as BuildError).message).toBe(
      [
        `image svcbuild/bad@${img.digest} changes 9 path(s) outside /project or that an overlay cannot carry:`,
        '  /etc/motd: deleted: base file deleted',
        '  /etc/passwd: modified: base file content changed',
        '  /home/user/the_venv/lib/new.py: added: file added outside /project',
        `  /home/user/the_venv/lib/new.py: manifest: not in ${m}: new files belong under /project`,
        '  /home/user/the_venv/lib/old.py: deleted: base file deleted',
        `  /home/user/the_venv/lib/old.py: manifest: listed in ${m} but deleted`,
        '  /opt/data/a.txt: deleted: base file deleted',
        '  /opt/data/b.txt: deleted: base file deleted',
        '  /project/escape: symlink-escape: symlink to ../etc/passwd leaves /project',
        '  /project/escape-abs: symlink-escape: symlink to /etc/passwd leaves /project',
        '  /usr/bin/tool: metadata: mode 0755 -> 0777',
      ].join('\n'),
    );
  });

  it('computes a clean overlay deterministically, unzips it with real unzip, and pushes it as a referrer', async () => {
    // GIVEN an image (Docker v2 manifest) whose only layer adds /project files and carries
    // parent directories identical to the base's
    const img = await pushImage(
      client,
      'svcbuild/good',
      'build-2',
      [
        ...baseLayers,
        await makeLayer([
          { path: 'home/', type: 'directory' },
          { path: 'home/user/', type: 'directory', ...user },
          { path: 'home/user/the_venv/', type: 'directory', ...user },
          { path: 'project/', type: 'directory', ...user },
          { path: 'project/app/', type: 'directory', mode: 0o750, ...user },
          { path: 'project/app/main.py', content: 'print("hi")\n', mode: 0o640, ...user },
          { path: 'project/app/run.sh', content: '#!/bin/sh\n'.repeat(100), mode: 0o755, ...user },
          { path: 'project/bin/', type: 'directory', ...user },
          { path: 'project/bin/run', type: 'symlink', linkname: '../app/run.sh', ...user },
        ]),
      ],
      { docker: true },
    );
    const opts = {
      client,
      base: 'svcbuild/base:v1',
      image: `svcbuild/good@${img.digest}`,
      envManifests: [{ root: '/home/user/the_venv', path: '/home/user/the_venv.sha256' }],
    };
    // WHEN computed twice
    const a = await computeOverlay(opts);
    const b = await computeOverlay(opts);
    // THEN no violation, the same bytes, and the digest is the zip's
    expect(a.violations).toEqual([]);
    expect(a.zip.equals(b.zip)).toBe(true);
    expect(a.digest).toBe(sha256Digest(a.zip));
    expect(a.bytes).toBe(a.zip.length);
    expect(a.entries.map((e) => e.path)).toEqual(['app', 'app/main.py', 'app/run.sh', 'bin', 'bin/run']);

    // WHEN unzipped by Info-ZIP unzip THEN modes and the symlink are restored
    const zipFile = join(work, 'overlay.zip');
    await writeFile(zipFile, a.zip);
    const listing = execFileSync('unzip', ['-Z', zipFile], { encoding: 'utf8' }).split('\n');
    expect(listing.slice(2, 7).map((l) => [l.slice(0, 10), l.split(/\s+/).at(-1)])).toEqual([
      ['drwxr-x---', 'app/'],
      ['-rw-r-----', 'app/main.py'],
      ['-rwxr-xr-x', 'app/run.sh'],
      ['drwxr-xr-x', 'bin/'],
      ['lrwxrwxrwx', 'bin/run'],
    ]);
    const out = join(work, 'project');
    execFileSync('unzip', ['-q', zipFile, '-d', out]);
    expect((await lstat(join(out, 'app/main.py'))).mode & 0o7777).toBe(0o640);
    expect((await lstat(join(out, 'app/run.sh'))).mode & 0o7777).toBe(0o755);
    expect((await lstat(join(out, 'app'))).mode & 0o7777).toBe(0o750);
    expect(await readlink(join(out, 'bin/run'))).toBe('../app/run.sh');
    expect(await readFile(join(out, 'bin/run'), 'utf8')).toBe('#!/bin/sh\n'.repeat(100));

    // WHEN pushed THEN it is a referrer of the image, with the zip as its one layer
    const digest = await pushOverlay(client, 'svcbuild/good', img.digest, a.zip);
    const refs = await client.listReferrers('svcbuild/good', img.digest, OVERLAY_ARTIFACT_TYPE);
    expect(refs.map((r) => r.digest)).toEqual([digest]);
    const art = await client.getManifest('svcbuild/good', digest);
    expect(art.json).toMatchObject({
      artifactType: OVERLAY_ARTIFACT_TYPE,
      layers: [{ mediaType: 'application/zip', digest: a.digest, size: a.bytes }],
      subject: { digest: img.digest, mediaType: img.mediaType, size: img.size },
    });
  });

  it('rejects an image not built on the base', async () => {
    // GIVEN an image whose first layer differs from the base's
    const other = await pushImage(client, 'svcbuild/other', 'v1', [await makeLayer([{ path: 'x', content: 'x' }])]);
    // WHEN its overlay is computed THEN InputError naming the differing layer
    const err = await computeOverlay({ client, base: 'svcbuild/base:v1', image: `svcbuild/other@${other.digest}` }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).message).toBe(
      `the image is not built on this base: the base has 2 layers, the image only 1\n  - base: has more layers (2) than the image (1)`,
    );
  });

  it('refuses a reference on another registry', async () => {
    // GIVEN a base on another host WHEN computed THEN InputError naming the field
    await expect(computeOverlay({ client, base: 'other.example:5000/svcbuild/base:v1', image: 'svcbuild/good:build-2' })).rejects.toThrow(
      `base other.example:5000/svcbuild/base is not on the registry ${reg.host}`,
    );
  });
});
