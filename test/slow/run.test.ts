/** `svcbuild run`: a built service started on this machine, from its image or base + overlay. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { run } from '../../src/util/exec.js';
import { ROOT, svcbuild } from '../helpers/cli.js';
import { waitForHttp } from '../helpers/container.js';
import { freePort } from '../helpers/registry.js';

const registry = inject('registryHost');
let env: Record<string, string>;
let stateDir: string;

beforeAll(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'svcbuild-run-'));
  env = { SVCBUILD_REGISTRY: registry, SVCBUILD_STATE_DIR: stateDir };
  const res = await svcbuild(['build', join(ROOT, 'examples/node-hello')], env);
  expect(res.code, res.stderr).toBe(0);
}, 900_000);
afterAll(async () => {
  await rm(stateDir, { recursive: true, force: true });
});

describe('svcbuild run', () => {
  for (const mode of ['image', 'overlay']) {
    it(`serves the last build in ${mode} mode`, { timeout: 300_000 }, async () => {
      // GIVEN a built service WHEN it is run detached on a free port
      const port = await freePort();
      const res = await svcbuild(
        ['run', 'node-hello', '--mode', mode, '--port', String(port), '--route', '/try', '-e', 'GREETING=hi', '--detach'],
        env,
      );
      expect(res.code, res.stderr).toBe(0);
      const [container, url] = res.stdout.trim().split('\n');
      try {
        // THEN it answers under the route, with packages from where they belong
        expect(url).toBe(`http://127.0.0.1:${port}/try/`);
        const r = await waitForHttp(url!);
        expect(r.status).toBe(200);
        expect(JSON.parse(r.body).nanoidFrom).toBe('/project/app/node_modules/nanoid/index.cjs');
      } finally {
        await run('podman', ['--runtime', 'runc', 'rm', '-f', '-t', '1', container!]);
      }
    });
  }

  it('says what is wrong with its options', async () => {
    const res = await svcbuild(['run', 'node-hello', '--mode', 'vm', '--port', '80'], env);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('--mode: image or overlay');
    expect(res.stderr).toContain('--port: 1024-65535, not 80');
  });
});
