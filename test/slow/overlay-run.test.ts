/**
 * The overlay proved by running: the base image is unpacked (skopeo + umoci), the build's
 * overlay zip is extracted at /project with the real `unzip`, and the service started from
 * that root filesystem must answer as the built image does. And a build that touches base
 * files fails its overlay step, naming every path.
 */
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { run, runOk } from '../../src/util/exec.js';
import { RegistryClient } from '../../src/registry/client.js';
import { parseImageRef } from '../../src/registry/ref.js';
import { ROOT, svcbuild } from '../helpers/cli.js';
import { freePort } from '../helpers/registry.js';
import { waitForHttp } from '../helpers/container.js';

const registry = inject('registryHost');
let stateDir: string;
let work: string;
let env: Record<string, string>;
const client = new RegistryClient({ host: registry, plainHttp: true });

beforeAll(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'svcbuild-state-'));
  work = await mkdtemp(join(tmpdir(), 'svcbuild-overlay-run-'));
  env = { SVCBUILD_REGISTRY: registry, SVCBUILD_STATE_DIR: stateDir };
});
afterAll(async () => {
  await rm(stateDir, { recursive: true, force: true });
  await rm(work, { recursive: true, force: true });
});

/** Unpacks an image from the registry into a root filesystem directory; returns its env. */
async function unpack(ref: string, dest: string): Promise<string[]> {
  const layout = join(dest, 'layout');
  await runOk('skopeo', ['copy', '--src-tls-verify=false', `docker://${ref}`, `oci:${layout}:img`]);
  await runOk('umoci', ['unpack', '--image', `${layout}:img`, join(dest, 'bundle')]);
  const r = parseImageRef(ref);
  const img = await client.getImage(r.repo, r.digest ?? r.tag ?? 'latest');
  return ((img.config as { config?: { Env?: string[] } }).config?.Env ?? []) as string[];
}

async function runRootfs(rootfs: string, imageEnv: string[], entrypoint: string[], extraEnv: Record<string, string>) {
  const port = await freePort();
  const name = `svcbuild-rootfs-${port}`;
  const envArgs = [...imageEnv, ...Object.entries({ PORT: String(port), ...extraEnv }).map(([k, v]) => `${k}=${v}`)].flatMap((e) => [
    '-e',
    e,
  ]);
  await runOk('podman', [
    '--runtime',
    'runc',
    'run',
    '-d',
    '--name',
    name,
    '--network',
    'host',
    '--ulimit',
    'nofile=1024:1024',
    '--ulimit',
    'nproc=1024:1024',
    '--user',
    '1000:1000',
    '--workdir',
    '/project/app',
    ...envArgs,
    '--rootfs',
    rootfs,
    ...entrypoint,
  ]);
  return {
    port,
    logs: async () => (await run('podman', ['--runtime', 'runc', 'logs', name])).output,
    stop: async () => void (await run('podman', ['--runtime', 'runc', 'rm', '-f', '-t', '2', name])),
  };
}

describe('overlay zip on the base image reproduces the installation', () => {
  for (const ex of [
    {
      dir: 'python-hello',
      path: '/svc/py/',
      check: (b: any) => expect(b.flask_from).toBe('/project/the_venv/lib/python3.13/site-packages/flask/__init__.py'),
    },
    { dir: 'node-hello', path: '/svc/node/', check: (b: any) => expect(b.nanoidFrom).toBe('/project/app/node_modules/nanoid/index.cjs') },
  ]) {
    it(`runs ${ex.dir} from base + overlay and answers 200`, { timeout: 900_000 }, async () => {
      // GIVEN a build of the example, with its overlay zip
      const res = await svcbuild(['build', join(ROOT, 'examples', ex.dir), '--json'], env);
      expect(res.code, res.stderr).toBe(0);
      const out = JSON.parse(res.stdout);
      const zip = await readFile(out.overlay.path);
      expect(out.overlay.bytes).toBe(zip.length);
      // AND the overlay artifact in the registry refers to the image
      const image = parseImageRef(out.image);
      const referrers = await client.listReferrers(image.repo, image.digest!, 'application/vnd.svcbuild.overlay.v1');
      expect(referrers).toHaveLength(1);

      // WHEN the base image is unpacked and the overlay extracted at /project
      const dest = join(work, ex.dir);
      await mkdir(dest, { recursive: true });
      const imageEnv = await unpack(out.base, dest);
      const rootfs = join(dest, 'bundle', 'rootfs');
      await runOk('unzip', ['-q', out.overlay.path, '-d', join(rootfs, 'project')]);
      await runOk('chown', ['-R', '1000:1000', join(rootfs, 'project')]);

      // THEN the service runs from there and answers as the image does
      const c = await runRootfs(rootfs, imageEnv, out.entrypoint, { CONTEXT_ROOT: ex.path.slice(0, -1) });
      try {
        const r = await waitForHttp(`http://127.0.0.1:${c.port}${ex.path}`);
        expect(r.status, await c.logs()).toBe(200);
        ex.check(JSON.parse(r.body));
      } finally {
        await c.stop();
      }
    });
  }
});

describe('immutability of the base image', () => {
  it('fails the overlay step listing every base path a build changed', { timeout: 900_000 }, async () => {
    // GIVEN the python base image (built by the example build)
    const res = await svcbuild(['build', join(ROOT, 'examples', 'python-hello'), '--json'], env);
    expect(res.code, res.stderr).toBe(0);
    const base = JSON.parse(res.stdout).base as string;
    // AND an image built on it that chmods a base file and upgrades a preinstalled package
    const ctx = join(work, 'bad');
    await mkdir(ctx, { recursive: true });
    await writeFile(join(ctx, 'app.py'), 'print(1)\n');
    await writeFile(
      join(ctx, 'Dockerfile'),
      [
        `FROM ${base}`,
        'USER user',
        'RUN chmod 600 /home/user/the_venv/bin/activate',
        'RUN uv pip install --python /home/user/the_venv/bin/python --no-compile idna==3.10',
        'COPY app.py /project/app/app.py',
        '',
      ].join('\n'),
    );
    const tag = `${registry}/svcbuild/test-immutability:1`;
    await runOk('buildah', [
      'bud',
      '--isolation=chroot',
      '--tls-verify=false',
      '-v',
      '/etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro',
      '-t',
      tag,
      ctx,
    ]);
    await runOk('buildah', ['push', '--tls-verify=false', tag]);

    // WHEN its overlay is computed
    const ov = await svcbuild(
      ['overlay', '--base', base, '--image', tag, '--env-manifest', '/home/user/the_venv=/home/user/the_venv.sha256'],
      env,
    );

    // THEN it fails, naming the chmod-ed file and the replaced package's files
    expect(ov.code, ov.output).toBe(7);
    expect(ov.stderr).toContain('/home/user/the_venv/bin/activate: metadata: mode 0644 -> 0600');
    expect(ov.stderr).toContain(
      '/home/user/the_venv/lib/python3.13/site-packages/idna-3.11.dist-info/METADATA: deleted: base file deleted',
    );
    expect(ov.stderr).toContain(
      '/home/user/the_venv/lib/python3.13/site-packages/idna-3.10.dist-info/METADATA: added: file added outside /project',
    );
  });
});
