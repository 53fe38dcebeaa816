/**
 * The local pipeline end to end, for real: buildah builds on real base images (debootstrap,
 * uv, npm), the images are pushed to a real registry and run as containers that must answer
 * HTTP 200 on PORT under CONTEXT_ROOT. Bad inputs must fail with a clear message, a non-zero
 * exit and nothing pushed.
 */
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
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
  stateDir = await mkdtemp(join(tmpdir(), 'svcbuild-state-'));
  env = { SVCBUILD_REGISTRY: registry, SVCBUILD_STATE_DIR: stateDir };
});
afterAll(async () => {
  await rm(stateDir, { recursive: true, force: true });
});

async function catalog(): Promise<string[]> {
  const res = await fetch(`http://${registry}/v2/_catalog?n=1000`);
  return ((await res.json()) as { repositories: string[] }).repositories;
}

async function project(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'svcbuild-project-'));
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return dir;
}

const DIGEST_REF = (repo: string) => new RegExp(`^${registry.replace(/\./g, '\\.')}/svcbuild/${repo}@sha256:[a-f0-9]{64}$`);

describe('svcbuild build: real images that run', () => {
  it('builds the Python example: flask installed under /project, click reused from the base', { timeout: 900_000 }, async () => {
    // GIVEN the bundled Python example (flask is not in the base image, click is)
    // WHEN it is built with --json
    const res = await svcbuild(['build', join(ROOT, 'examples/python-hello'), '--json'], env);
    // THEN it succeeds and names the image and the base by digest, and every step succeeded
    expect(res.code, res.stderr).toBe(0);
    const out = JSON.parse(res.stdout);
    expect(out.image).toMatch(DIGEST_REF('local-python-hello'));
    expect(out.base).toMatch(DIGEST_REF('base/python-3.13'));
    expect(out.kind).toBe('python');
    expect(
      out.steps
        .filter((s: { name: string }) => !s.name.startsWith('base:'))
        .map((s: { name: string; status: string }) => [s.name, s.status]),
    ).toEqual(
      expect.arrayContaining([
        ['source', 'succeeded'],
        ['build', 'succeeded'],
      ]),
    );
    for (const s of out.steps) expect(typeof s.seconds).toBe('number');

    // AND the image runs and answers under its CONTEXT_ROOT on PORT
    const c = await runImage(out.image, { CONTEXT_ROOT: '/svc/hello' });
    try {
      const r = await waitForHttp(`http://127.0.0.1:${c.port}/svc/hello/`);
      expect(r.status, await c.logs()).toBe(200);
      const body = JSON.parse(r.body);
      expect(body.service).toBe('python-hello');
      expect(body.flask_from).toBe('/project/the_venv/lib/python3.13/site-packages/flask/__init__.py');
      expect(body.click_from).toBe('/home/user/the_venv/lib/python3.13/site-packages/click/__init__.py');
      expect((await fetch(`http://127.0.0.1:${c.port}/other/`)).status).toBe(404);
    } finally {
      await c.stop();
    }
  });

  it('builds the Node example: nanoid installed under /project, express reused from the base', { timeout: 900_000 }, async () => {
    // GIVEN the bundled Node example WHEN it is built
    const res = await svcbuild(['build', join(ROOT, 'examples/node-hello'), '--json'], env);
    // THEN the image runs and resolves each package from where it belongs
    expect(res.code, res.stderr).toBe(0);
    const out = JSON.parse(res.stdout);
    expect(out.image).toMatch(DIGEST_REF('local-node-hello'));
    expect(out.base).toMatch(DIGEST_REF('base/node-22'));
    const c = await runImage(out.image, { CONTEXT_ROOT: '/svc/node' });
    try {
      const r = await waitForHttp(`http://127.0.0.1:${c.port}/svc/node/`);
      expect(r.status, await c.logs()).toBe(200);
      const body = JSON.parse(r.body);
      expect(body.service).toBe('node-hello');
      expect(body.expressFrom).toBe('/home/user/node_modules/express/index.js');
      expect(body.nanoidFrom).toBe('/project/app/node_modules/nanoid/index.cjs');
    } finally {
      await c.stop();
    }
  });

  it('builds a prebuilt executable with its assets', { timeout: 900_000 }, async () => {
    // GIVEN a static executable and an assets directory
    const dir = await mkdtemp(join(tmpdir(), 'svcbuild-binary-'));
    try {
      await runOk('go', ['build', '-o', join(dir, 'hello-server'), 'main.go'], {
        cwd: join(ROOT, 'examples/binary-hello'),
        env: { ...process.env, CGO_ENABLED: '0', GOFLAGS: '-mod=mod', GO111MODULE: 'off' },
      });
      await cp(join(ROOT, 'examples/binary-hello/assets'), join(dir, 'assets'), { recursive: true });
      // WHEN it is built (kind detected from the single top-level executable)
      const res = await svcbuild(['build', dir, '--name', 'binary-hello', '--json'], env);
      expect(res.code, res.stderr).toBe(0);
      const out = JSON.parse(res.stdout);
      expect(out.kind).toBe('binary');
      expect(out.entrypoint).toEqual(['/project/app/hello-server']);
      // THEN it runs from /project/app and serves its asset
      const c = await runImage(out.image, { CONTEXT_ROOT: '/bin' });
      try {
        const r = await waitForHttp(`http://127.0.0.1:${c.port}/bin/`);
        expect(r.status, await c.logs()).toBe(200);
        expect(r.body).toBe('<h1>binary-hello</h1>\n');
      } finally {
        await c.stop();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('svcbuild build: bad input fails clearly and pushes nothing', () => {
  const cases: Array<{
    what: string;
    files: Record<string, string>;
    args?: string[];
    env?: Record<string, string>;
    code: number;
    expect: string[];
    repo: string;
  }> = [
    {
      what: 'no pyproject.toml for kind python',
      files: { 'main.py': 'print(1)\n' },
      args: ['--kind', 'python', '--name', 'nopyproject'],
      code: 2,
      expect: ['pyproject.toml: missing: add a pyproject.toml'],
      repo: 'local-nopyproject',
    },
    {
      what: 'no package.json for kind node',
      files: { 'server.js': '' },
      args: ['--kind', 'node', '--name', 'nopkg'],
      code: 2,
      expect: ['package.json: missing: add a package.json'],
      repo: 'local-nopkg',
    },
    {
      what: 'a dependency that does not resolve (uv says why)',
      files: {
        'pyproject.toml': '[project]\nname = "baddep"\nversion = "1"\ndependencies = ["svcbuild-surely-no-such-package-zz==1.0"]\n',
        'main.py': '',
      },
      code: 7,
      expect: [
        'installing the dependencies failed',
        'No solution found',
        'svcbuild-surely-no-such-package-zz was not found in the package',
      ],
      repo: 'local-baddep',
    },
    {
      what: 'an npm dependency that does not resolve (npm says why)',
      files: {
        'package.json': JSON.stringify({ name: 'badnpm', dependencies: { 'svcbuild-surely-no-such-package-zz': '1.0.0' } }),
        'server.js': '',
      },
      code: 7,
      expect: ['installing the dependencies failed', "npm error 404  'svcbuild-surely-no-such-package-zz@1.0.0' is not in this registry."],
      repo: 'local-badnpm',
    },
    {
      what: 'a dependency that would replace a preinstalled version',
      files: {
        'pyproject.toml': '[project]\nname = "upgrade"\nversion = "1"\ndependencies = ["click==8.1.7"]\n',
        'main.py': '',
      },
      code: 7,
      expect: ['click==8.1.7', 'click==8.3.1'],
      repo: 'local-upgrade',
    },
    {
      what: 'requires-python the base cannot meet',
      files: { 'pyproject.toml': '[project]\nname = "future"\nversion = "1"\nrequires-python = ">=3.14"\n', 'main.py': '' },
      code: 2,
      expect: ['pyproject.toml:project.requires-python: ">=3.14" excludes Python 3.13 of base image python-3.13'],
      repo: 'local-future',
    },
    {
      what: 'engines.node the base cannot meet',
      files: { 'package.json': JSON.stringify({ name: 'oldnode', engines: { node: '<18' } }), 'server.js': '' },
      code: 2,
      expect: ['package.json:engines.node: "<18" excludes Node.js 22'],
      repo: 'local-oldnode',
    },
    {
      what: 'a service name that breaks the rules',
      files: { 'pyproject.toml': '[project]\nname = "x"\nversion = "1"\n', 'main.py': '' },
      args: ['--name', 'Bad_Name'],
      code: 2,
      expect: ['name: "Bad_Name" is not a valid service name: start with a lower-case letter'],
      repo: 'local-bad_name',
    },
    {
      what: 'a service name too long with its tenant prefix',
      files: { 'pyproject.toml': '[project]\nname = "x"\nversion = "1"\n', 'main.py': '' },
      args: ['--name', 'a-very-long-service-name-indeed-yes'],
      code: 2,
      expect: ['is 41 characters; the limit is 32'],
      repo: 'local-a-very-long-service-name-indeed-yes',
    },
    {
      what: 'an unknown base image',
      files: { 'pyproject.toml': '[project]\nname = "nobase"\nversion = "1"\n', 'main.py': '' },
      args: ['--base', 'python-9.9'],
      code: 2,
      expect: ['base: "python-9.9" is not in the catalog; choose one of: python-3.13, node-22, binary'],
      repo: 'local-nobase',
    },
    {
      what: 'an unknown kind',
      files: { 'main.py': '' },
      args: ['--kind', 'cobol', '--name', 'unknownkind'],
      code: 2,
      expect: ['kind: "cobol" is not a project kind; known kinds: python, node, binary'],
      repo: 'local-unknownkind',
    },
    {
      what: 'a known kind this installation disables',
      files: { 'package.json': '{"name":"disabled"}', 'server.js': '' },
      env: { SVCBUILD_ENABLED_KINDS: 'python' },
      code: 2,
      expect: ['the project looks like "node", a known kind that this installation does not enable (enabled: python)'],
      repo: 'local-disabled',
    },
  ];

  for (const c of cases) {
    it(`rejects ${c.what}`, { timeout: 300_000 }, async () => {
      // GIVEN a project with the problem
      const dir = await project(c.files);
      try {
        // WHEN it is built
        const res = await svcbuild(['build', dir, ...(c.args ?? [])], { ...env, ...(c.env ?? {}) });
        // THEN the exit code and message say what to fix, and nothing was pushed
        expect(res.code, res.output).toBe(c.code);
        for (const text of c.expect) expect(res.stderr).toContain(text);
        expect(await catalog()).not.toContain(`svcbuild/${c.repo}`);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  }
});
