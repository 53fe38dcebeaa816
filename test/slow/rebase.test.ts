/**
 * Rebase for real: a built service is moved onto a patched base image without installing
 * anything, and runs; onto a base with another language it is refused with the reason.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runOk } from '../../src/util/exec.js';
import { ROOT, svcbuild } from '../helpers/cli.js';
import { runImage, waitForHttp } from '../helpers/container.js';

const registry = inject('registryHost');
let stateDir: string;
let env: Record<string, string>;

beforeAll(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'svcbuild-rebase-'));
  env = { SVCBUILD_REGISTRY: registry, SVCBUILD_STATE_DIR: stateDir };
});
afterAll(async () => {
  await rm(stateDir, { recursive: true, force: true });
});

describe('svcbuild rebase', () => {
  it('moves the service onto a patched base and it still runs', { timeout: 900_000 }, async () => {
    // GIVEN a built service
    const built = await svcbuild(['build', join(ROOT, 'examples/python-hello'), '--json'], env);
    expect(built.code, built.stderr).toBe(0);
    const b = JSON.parse(built.stdout);
    // AND a patched base: the same base with a security fix layer on top
    const ctx = await mkdtemp(join(tmpdir(), 'svcbuild-patch-'));
    const patched = `${registry}/svcbuild/base/python-3.13:patched`;
    try {
      await writeFile(join(ctx, 'Dockerfile'), `FROM ${b.base}\nUSER root\nRUN echo fixed > /etc/svcbuild-patch\nUSER user\n`);
      await runOk('buildah', ['bud', '--isolation=chroot', '--tls-verify=false', '-t', patched, ctx]);
      await runOk('buildah', ['push', '--tls-verify=false', patched]);
    } finally {
      await rm(ctx, { recursive: true, force: true });
    }
    // WHEN the service is re-based onto it
    const res = await svcbuild(['rebase', 'python-hello', '--base', patched, '--json'], env);
    // THEN a new image on the new base, with the same project layers, verified and published
    expect(res.code, res.stderr).toBe(0);
    const r = JSON.parse(res.stdout);
    expect(r.rebasedFrom).toBe(b.id);
    expect(r.image).not.toBe(b.image);
    expect(r.base).not.toBe(b.base);
    expect(r.steps.map((s: { name: string }) => s.name)).toEqual(['rebase', 'overlay', 'publish']);
    expect(r.overlay.digest).toBe(b.overlay.digest);
    // AND it runs, with the fix and the service's own packages
    const c = await runImage(r.image, { CONTEXT_ROOT: '/r' });
    try {
      const h = await waitForHttp(`http://127.0.0.1:${c.port}/r/`);
      expect(h.status, await c.logs()).toBe(200);
      expect(JSON.parse(h.body).flask_from).toBe('/project/the_venv/lib/python3.13/site-packages/flask/__init__.py');
    } finally {
      await c.stop();
    }
  });

  it('refuses a base that changes the language, saying a rebuild is needed', { timeout: 900_000 }, async () => {
    // GIVEN the python service and the node base
    const res = await svcbuild(['rebase', 'python-hello', '--base', 'node-22'], env);
    // THEN it is refused with the reason
    expect(res.code).toBe(7);
    expect(res.stderr).toContain('the new base cannot carry this service unchanged; rebuild it instead');
    expect(res.stderr).toContain('the language version changes from 3.13 to 22');
  });

  it('says which service it cannot find', async () => {
    const res = await svcbuild(['rebase', 'nosuch', '--base', 'python-3.13'], env);
    expect(res.code).toBe(4);
    expect(res.stderr).toContain('no build of service local-nosuch');
  });
});
