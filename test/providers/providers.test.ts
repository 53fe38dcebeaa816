import { mkdtemp, mkdir, rm, symlink, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { selectProvider } from '../../src/providers/index.js';
import { stageProject, type Project } from '../../src/providers/project.js';
import { pythonProvider } from '../../src/providers/python.js';
import { nodeProvider } from '../../src/providers/node.js';
import { binaryProvider } from '../../src/providers/binary.js';
import type { BaseInfo } from '../../src/providers/provider.js';

const PY: BaseInfo = { name: 'python-3.13', kind: 'python', ref: '', languageVersion: '3.13' };
const NODE: BaseInfo = { name: 'node-22', kind: 'node', ref: '', languageVersion: '22' };
const BIN: BaseInfo = { name: 'binary', kind: 'binary', ref: '' };

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function stage(files: Record<string, string | { text: string; mode: number } | { link: string }>): Promise<Project> {
  const src = await mkdtemp(join(tmpdir(), 'svcbuild-src-'));
  const dest = await mkdtemp(join(tmpdir(), 'svcbuild-ctx-'));
  dirs.push(src, dest);
  for (const [name, v] of Object.entries(files)) {
    await mkdir(join(src, name, '..'), { recursive: true });
    if (typeof v === 'string') await writeFile(join(src, name), v);
    else if ('link' in v) await symlink(v.link, join(src, name));
    else {
      await writeFile(join(src, name), v.text);
      await chmod(join(src, name), v.mode);
    }
  }
  return stageProject(src, dest);
}

function issuesOf(fn: () => unknown): Promise<Array<{ path: string; message: string }>> {
  return Promise.resolve()
    .then(fn)
    .then(
      () => {
        throw new Error('expected an InputError');
      },
      (e: unknown) => {
        expect(e).toBeInstanceOf(InputError);
        return (e as InputError).issues;
      },
    );
}

describe('staging a project', () => {
  it('copies sources, leaves caches out, and records executables', async () => {
    // GIVEN a project with a venv, node_modules, __pycache__ and an executable
    const p = await stage({
      'pyproject.toml': '[project]\nname="a"\n',
      'main.py': '',
      '.venv/bin/python': 'x',
      'node_modules/x/index.js': '',
      'pkg/__pycache__/m.cpython-313.pyc': '',
      'run.sh': { text: '#!/bin/sh\n', mode: 0o755 },
    });
    // THEN only the sources are staged
    expect(p.files).toEqual(['main.py', 'pyproject.toml', 'run.sh']);
    expect(p.executables).toEqual(['run.sh']);
  });

  it('refuses symlinks that leave the project, naming each', async () => {
    // GIVEN links to outside the root, absolute and relative, and one that stays inside
    const err = await issuesOf(() =>
      stage({ 'a.txt': '', inside: { link: 'a.txt' }, abs: { link: '/etc/passwd' }, 'sub/up': { link: '../../x' } }),
    );
    // THEN both escaping links are reported and the inner one is not
    expect(err).toEqual([
      { path: 'project/abs', message: 'symlink to /etc/passwd points outside the project; copy the file in or remove the link' },
      { path: 'project/sub/up', message: 'symlink to ../../x points outside the project; copy the file in or remove the link' },
    ]);
  });
});

describe('choosing a provider', () => {
  it('detects python, node and binary projects', async () => {
    expect(selectProvider(await stage({ 'pyproject.toml': '' }), undefined, ['python', 'node', 'binary']).kind).toBe('python');
    expect(selectProvider(await stage({ 'package.json': '{}' }), undefined, ['python', 'node', 'binary']).kind).toBe('node');
    expect(
      selectProvider(await stage({ server: { text: 'x', mode: 0o755 }, 'assets/a.html': '' }), undefined, ['python', 'node', 'binary'])
        .kind,
    ).toBe('binary');
  });

  it('tells an unknown kind from a known kind that is disabled', async () => {
    const p = await stage({ 'package.json': '{}' });
    // WHEN an unknown kind is asked for THEN the error lists the known kinds
    expect(await issuesOf(() => selectProvider(p, 'ruby', ['python', 'node']))).toEqual([
      { path: 'kind', message: '"ruby" is not a project kind; known kinds: python, node, binary' },
    ]);
    // WHEN a known but disabled kind is asked for THEN the error says it is disabled here
    expect(await issuesOf(() => selectProvider(p, 'node', ['python']))).toEqual([
      { path: 'kind', message: '"node" is a known kind, but this installation enables only: python (config.enabledKinds)' },
    ]);
  });

  it('says what to add when nothing is recognisable', async () => {
    const p = await stage({ 'README.md': '' });
    expect(await issuesOf(() => selectProvider(p, undefined, ['python', 'node', 'binary']))).toEqual([
      {
        path: 'kind',
        message:
          'found no pyproject.toml (python), no package.json (node) and no single top-level executable (binary); add one or pass --kind',
      },
    ]);
  });
});

describe('python provider', () => {
  it('installs from pyproject.toml into the base venv under its constraints, then adopts new files', async () => {
    const p = await stage({
      'pyproject.toml': '[project]\nname = "svc"\ndependencies = ["flask"]\nrequires-python = ">=3.11,<4"\n',
      'app.py': '',
    });
    const plan = await pythonProvider.plan(p, PY, {});
    expect(plan.dependencyFiles).toEqual(['pyproject.toml']);
    expect(plan.entrypoint).toEqual(['python', '/project/app/app.py']);
    expect(plan.installCommand).toBe(
      'uv pip install --python /home/user/the_venv/bin/python --constraint /home/user/constraints.txt --no-compile -r /project/app/pyproject.toml' +
        ' && python3.13 -I -B /usr/local/lib/svcbuild/svcbuild-python.py adopt /home/user/the_venv /home/user/the_venv.sha256 /project/the_venv',
    );
    expect(plan.suggestedName).toBe('svc');
  });

  it('uses uv.lock, then requirements.txt, when present', async () => {
    const locked = await pythonProvider.plan(
      await stage({ 'pyproject.toml': '[project]\nname="a"\n', 'uv.lock': '', 'requirements.txt': '', 'main.py': '' }),
      PY,
      {},
    );
    expect(locked.dependencyFiles).toEqual(['pyproject.toml', 'uv.lock']);
    expect(locked.installCommand).toContain('uv export --frozen --no-dev --no-emit-project');
    const req = await pythonProvider.plan(
      await stage({ 'pyproject.toml': '[project]\nname="a"\n', 'requirements.txt': '', 'main.py': '' }),
      PY,
      {},
    );
    expect(req.dependencyFiles).toEqual(['pyproject.toml', 'requirements.txt']);
    expect(req.installCommand).toContain('-r /project/app/requirements.txt');
  });

  it('reports every problem at once', async () => {
    const p = await stage({ 'pyproject.toml': '[project]\nrequires-python = ">=3.14"\ndependencies = "flask"\n' });
    expect(await issuesOf(() => pythonProvider.plan(p, PY, {}))).toEqual([
      {
        path: 'pyproject.toml:project.requires-python',
        message:
          '">=3.14" excludes Python 3.13 of base image python-3.13 (fails >=3.14); relax requires-python or choose another base with --base',
      },
      { path: 'pyproject.toml:project.dependencies', message: 'must be a list of requirement strings' },
      {
        path: 'entrypoint',
        message:
          'no entrypoint: add one of main.py, app.py, server.py, __main__.py, or set entrypoint in svcbuild.yaml (e.g. ["python", "-m", "myservice"])',
      },
    ]);
  });

  it('rejects a pyproject.toml that is not TOML', async () => {
    const p = await stage({ 'pyproject.toml': '[project\n' });
    const issues = await issuesOf(() => pythonProvider.plan(p, PY, {}));
    expect(issues.map((i) => i.path)).toEqual(['pyproject.toml']);
  });
});

describe('node provider', () => {
  it('takes the entrypoint from scripts.start and copies the lockfile first', async () => {
    const p = await stage({
      'package.json': JSON.stringify({ name: '@acme/My_Svc', scripts: { start: 'node src/serve.js' }, dependencies: { express: '^5' } }),
      'package-lock.json': '{}',
      'src/serve.js': '',
    });
    const plan = await nodeProvider.plan(p, NODE, {});
    expect(plan.entrypoint).toEqual(['node', '/project/app/src/serve.js']);
    expect(plan.dependencyFiles).toEqual(['package.json', 'package-lock.json']);
    expect(plan.installCommand).toBe('node /usr/local/lib/svcbuild/svcbuild-node.js install /project/app');
  });

  it('skips the install step when there are no dependencies', async () => {
    const plan = await nodeProvider.plan(await stage({ 'package.json': '{"name":"x"}', 'index.js': '' }), NODE, {});
    expect(plan.installCommand).toBeUndefined();
    expect(plan.entrypoint).toEqual(['node', '/project/app/index.js']);
  });

  it('rejects engines.node the base cannot meet and bad dependency maps', async () => {
    const p = await stage({ 'package.json': JSON.stringify({ engines: { node: '>=24' }, dependencies: ['express'] }), 'index.js': '' });
    expect(await issuesOf(() => nodeProvider.plan(p, NODE, {}))).toEqual([
      {
        path: 'package.json:engines.node',
        message: '">=24" excludes Node.js 22 of base image node-22; relax engines.node or choose another base with --base',
      },
      { path: 'package.json:dependencies', message: 'must map package names to version ranges' },
    ]);
  });
});

describe('binary provider', () => {
  it('runs the single top-level executable from /project/app', async () => {
    const p = await stage({ server: { text: 'x', mode: 0o755 }, 'assets/index.html': '', 'tools/helper': { text: 'x', mode: 0o755 } });
    expect((await binaryProvider.plan(p, BIN, {})).entrypoint).toEqual(['/project/app/server']);
  });

  it('asks for an entrypoint when there are several executables', async () => {
    const p = await stage({ a: { text: 'x', mode: 0o755 }, b: { text: 'x', mode: 0o755 } });
    expect(await issuesOf(() => binaryProvider.plan(p, BIN, {}))).toEqual([
      { path: 'entrypoint', message: 'several executables (a, b): set entrypoint in svcbuild.yaml' },
    ]);
    expect((await binaryProvider.plan(p, BIN, { entrypoint: ['b', '--serve'] })).entrypoint).toEqual(['/project/app/b', '--serve']);
  });
});
