/**
 * The step logic against a real registry, without buildah: source and context round trip,
 * promotion, and deletion that never takes a promoted image with it. Plus the pure parts.
 */
import { mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/schema.js';
import { InputError, NotFoundError } from '../../src/errors.js';
import { RegistryClient } from '../../src/registry/client.js';
import { runOk } from '../../src/util/exec.js';
import { runContextStep, ignoreFile, baseInfoFor } from '../../src/steps/context.js';
import { deleteReference, promote } from '../../src/steps/registry.js';
import { checkGitSpec, runSourceStep, SOURCE_ARTIFACT_TYPE } from '../../src/steps/source.js';
import { packProject } from '../../src/steps/project.js';
import { formatChartRef, parseChartRef } from '../../src/steps/publish.js';
import { deployCommand, helmFailureKind } from '../../src/steps/deploy.js';
import { parseChartSettings } from '../../src/steps/values.js';
import { writeOutput } from '../../src/steps/common.js';
import { statusReport } from '../../src/cli/commands/report.js';
import { makeLayer, pushImage } from '../overlay/image-builder.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const D = `sha256:${'b'.repeat(64)}`;

describe('step logic against a registry', () => {
  let reg: TestRegistry;
  let client: RegistryClient;
  let work: string;
  let config: ReturnType<typeof parseConfig>;
  let baseDigest: string;

  beforeAll(async () => {
    reg = await startRegistry();
    client = new RegistryClient({ host: reg.host, plainHttp: true });
    config = parseConfig({ registry: { host: reg.host } });
    work = await mkdtemp(join(tmpdir(), 'svcbuild-steps-unit-'));
    baseDigest = (await pushImage(client, 'svcbuild/base/node-22', 'v1', [await makeLayer([{ path: 'etc/hosts', content: 'h\n' }])]))
      .digest;
  });
  afterAll(async () => {
    await reg?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  async function upload(name: string, files: Record<string, string>): Promise<string> {
    const dir = join(work, name);
    await mkdir(dir, { recursive: true });
    for (const [f, text] of Object.entries(files)) {
      await mkdir(join(dir, f, '..'), { recursive: true });
      await writeFile(join(dir, f), text);
    }
    const tgz = join(work, `${name}.tgz`);
    await runOk('tar', ['-czf', tgz, '-C', dir, '.']);
    const desc = await client.pushArtifact({
      repo: 'svcbuild/uploads',
      artifactType: 'application/vnd.svcbuild.upload.v1',
      files: [{ mediaType: 'application/gzip', bytes: await readFile(tgz) }],
    });
    return desc.digest;
  }

  const NODE = {
    'package.json': '{"name":"hello","scripts":{"start":"node server.js"},"dependencies":{"nanoid":"^3.3.11"}}',
    'server.js': 'require("http")\n',
  };

  it('source pushes the checked project; context writes it back with its Dockerfile', async () => {
    // GIVEN an uploaded node project with its own .dockerignore
    const digest = await upload('p1', { ...NODE, '.dockerignore': 'secrets' });
    // WHEN the source step runs
    const res = await runSourceStep({
      config,
      client,
      source: { kind: 'archive', archive: { host: reg.host, repo: 'svcbuild/uploads', digest } },
      push: { host: reg.host, repo: 'svcbuild/acme-a', tag: 'source-1' },
    });
    // THEN it pushed a source artifact, by the digest it returns
    expect(res).toEqual({ digest: expect.stringMatching(/^sha256:/), kind: 'node', files: 3, bytes: expect.any(Number) });
    const m = await client.getManifest('svcbuild/acme-a', 'source-1');
    expect(m.digest).toBe(res.digest);
    expect((m.json as { artifactType?: string }).artifactType).toBe(SOURCE_ARTIFACT_TYPE);

    // WHEN the context step reads it back
    const out = join(work, 'ws1');
    const ctx = await runContextStep({
      config,
      client,
      source: { host: reg.host, repo: 'svcbuild/acme-a', digest: res.digest },
      language: 'node',
      base: { host: reg.host, repo: 'svcbuild/base/node-22', digest: baseDigest },
      out,
    });
    // THEN the project, the Dockerfile FROM the base by digest, and the merged ignore file are there
    expect((await readdir(out)).sort()).toEqual(['.dockerignore', 'Dockerfile', 'package.json', 'server.js']);
    expect(ctx.base).toBe(`${reg.host}/svcbuild/base/node-22@${baseDigest}`);
    expect(ctx.port).toBe(8080);
    expect(await readFile(join(out, 'Dockerfile'), 'utf8')).toContain(`FROM ${reg.host}/svcbuild/base/node-22@${baseDigest}\n`);
    expect(await readFile(join(out, '.dockerignore'), 'utf8')).toBe(ignoreFile('secrets'));

    // AND a context directory that is not empty is refused, naming --out
    await expect(
      runContextStep({
        config,
        client,
        source: { host: reg.host, repo: 'svcbuild/acme-a', digest: res.digest },
        language: 'node',
        base: { host: reg.host, repo: 'svcbuild/base/node-22', digest: baseDigest },
        out,
      }),
    ).rejects.toMatchObject({
      issues: [{ path: '--out', message: expect.stringContaining('.dockerignore, Dockerfile, package.json, server.js') }],
    });
  });

  it('source refuses a hostile archive and an undetectable project; context refuses a non-source artifact and the wrong language', async () => {
    // GIVEN an archive whose symlink leaves the project
    const dir = join(work, 'evil');
    await mkdir(dir);
    await writeFile(join(dir, 'package.json'), '{}');
    await symlink('/etc/passwd', join(dir, 'pw'));
    await runOk('tar', ['-czf', join(work, 'evil.tgz'), '-C', dir, '.']);
    const evil = await client.pushArtifact({
      repo: 'svcbuild/uploads',
      artifactType: 'x',
      files: [{ mediaType: 'application/gzip', bytes: await readFile(join(work, 'evil.tgz')) }],
    });
    const push = { host: reg.host, repo: 'svcbuild/acme-b', tag: 'source-1' };
    // WHEN/THEN the source step refuses it with the extraction rules' message
    const e1 = await runSourceStep({
      config,
      client,
      source: { kind: 'archive', archive: { host: reg.host, repo: 'svcbuild/uploads', digest: evil.digest } },
      push,
    }).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(InputError);
    expect((e1 as InputError).issues.map((i) => i.path)).toEqual(['source/./pw']);
    // AND a project of no known kind is refused
    const none = await upload('none', { 'README.md': 'hi' });
    const e2 = await runSourceStep({
      config,
      client,
      source: { kind: 'archive', archive: { host: reg.host, repo: 'svcbuild/uploads', digest: none } },
      push,
    }).catch((e: unknown) => e);
    expect((e2 as InputError).message).toBe(
      'cannot tell what kind of project this is\n  - kind: found no pyproject.toml (python), no package.json (node) and no single top-level executable (binary); add one or pass --kind',
    );
    // AND a missing archive names --archive-ref
    const e3 = await runSourceStep({
      config,
      client,
      source: { kind: 'archive', archive: { host: reg.host, repo: 'svcbuild/uploads', digest: D } },
      push,
    }).catch((e: unknown) => e);
    expect((e3 as InputError).issues[0]?.path).toBe('--archive-ref');
    // AND nothing was pushed
    await expect(client.getManifest('svcbuild/acme-b', 'source-1')).rejects.toBeInstanceOf(NotFoundError);

    // WHEN the context step is given the upload itself (not a source artifact) THEN --source is refused
    const ctxOpts = { config, client, language: 'node', base: { host: reg.host, repo: 'svcbuild/base/node-22', digest: baseDigest } };
    const e4 = await runContextStep({
      ...ctxOpts,
      source: { host: reg.host, repo: 'svcbuild/uploads', digest: none },
      out: join(work, 'ws2'),
    }).catch((e: unknown) => e);
    expect((e4 as InputError).issues[0]?.path).toBe('--source');
    // AND a python build on a node source fails on the provider, and leaves --out empty
    const src = await runSourceStep({
      config,
      client,
      source: { kind: 'archive', archive: { host: reg.host, repo: 'svcbuild/uploads', digest: await upload('p2', NODE) } },
      push: { ...push, repo: 'svcbuild/acme-c' },
    });
    const out = join(work, 'ws3');
    const e5 = await runContextStep({
      ...ctxOpts,
      language: 'python',
      source: { host: reg.host, repo: 'svcbuild/acme-c', digest: src.digest },
      out,
    }).catch((e: unknown) => e);
    expect(e5).toBeInstanceOf(InputError);
    expect(await readdir(out)).toEqual([]);
  });

  it('deletes an unpromoted tag with its image, a promoted image only loses that tag', async () => {
    // GIVEN two images, one promoted
    const layer = await makeLayer([{ path: 'a', content: '1' }]);
    const lone = (await pushImage(client, 'svcbuild/acme-d', 'build-1', [layer])).digest;
    const kept = (await pushImage(client, 'svcbuild/acme-d', 'build-2', [layer, await makeLayer([{ path: 'b', content: '2' }])])).digest;
    expect(await promote(client, { host: reg.host, repo: 'svcbuild/acme-d', digest: kept }, 'live')).toBe(kept);
    // WHEN the unpromoted tag is deleted THEN the image goes with it
    expect(await deleteReference(client, { host: reg.host, repo: 'svcbuild/acme-d', tag: 'build-1' })).toEqual({
      result: 'deleted',
      digest: lone,
      imageDeleted: true,
      keptBy: [],
    });
    await expect(client.getManifest('svcbuild/acme-d', lone)).rejects.toBeInstanceOf(NotFoundError);
    // WHEN the promoted image's build tag is deleted THEN only that tag goes
    expect(await deleteReference(client, { host: reg.host, repo: 'svcbuild/acme-d', tag: 'build-2' })).toEqual({
      result: 'deleted',
      digest: kept,
      imageDeleted: false,
      keptBy: ['live'],
    });
    expect((await client.listTags('svcbuild/acme-d')).sort()).toEqual(['live']);
    expect((await client.getManifest('svcbuild/acme-d', 'live')).digest).toBe(kept);
    // AND deleting a missing tag or digest says so
    expect(await deleteReference(client, { host: reg.host, repo: 'svcbuild/acme-d', tag: 'build-1' })).toEqual({ result: 'missing' });
    expect(await deleteReference(client, { host: reg.host, repo: 'svcbuild/acme-d', digest: lone })).toEqual({ result: 'missing' });
    // AND by digest the manifest is deleted, its tags with it
    expect(await deleteReference(client, { host: reg.host, repo: 'svcbuild/acme-d', digest: kept })).toEqual({
      result: 'deleted',
      digest: kept,
      imageDeleted: true,
      keptBy: [],
    });
    expect(await client.listTags('svcbuild/acme-d')).toEqual([]);
  });
});

describe('pure step helpers', () => {
  it('checkGitSpec refuses option-like refs, ranges and escaping subdirectories', () => {
    expect(checkGitSpec('main', 'svc/api')).toEqual([]);
    expect(checkGitSpec('v1.2.3', '')).toEqual([]);
    expect(checkGitSpec('0123456789abcdef0123456789abcdef01234567', '.')).toEqual([]);
    expect(checkGitSpec('-x', '').map((i) => i.flag)).toEqual(['git-ref']);
    expect(checkGitSpec('a..b', '').map((i) => i.flag)).toEqual(['git-ref']);
    expect(checkGitSpec('main', '/etc').map((i) => i.flag)).toEqual(['git-subdir']);
    expect(checkGitSpec('main', 'a/../../b').map((i) => i.flag)).toEqual(['git-subdir']);
  });

  it('packProject is deterministic: same files, same bytes', async () => {
    const a = await mkdtemp(join(tmpdir(), 'svcbuild-pack-'));
    try {
      await mkdir(join(a, 'lib'));
      await writeFile(join(a, 'lib', 'x.js'), 'x');
      await writeFile(join(a, 'run'), '#!/bin/sh\n', { mode: 0o755 });
      const one = await packProject(a);
      await new Promise((r) => setTimeout(r, 20));
      await writeFile(join(a, 'lib', 'x.js'), 'x'); // new mtime, same content
      expect((await packProject(a)).equals(one)).toBe(true);
      const tar = gunzipSync(one);
      const names: string[] = [];
      for (let off = 0; off + 512 <= tar.length && tar[off] !== 0;) {
        const name = tar
          .subarray(off, off + 100)
          .toString('utf8')
          .replace(/\0.*$/s, '');
        const size = parseInt(
          tar
            .subarray(off + 124, off + 136)
            .toString('utf8')
            .trim() || '0',
          8,
        );
        const mode = tar
          .subarray(off + 100, off + 108)
          .toString('utf8')
          .replace(/\0/g, '')
          .trim();
        names.push(`${name} ${mode}`);
        off += 512 + Math.ceil(size / 512) * 512;
      }
      expect(names).toEqual(['lib/ 000755', 'lib/x.js 000644', 'run 000755']);
    } finally {
      await rm(a, { recursive: true, force: true });
    }
  });

  it('ignoreFile keeps the project rules and adds the generated files', () => {
    expect(ignoreFile(undefined)).toBe(
      '# Written by svcbuild: the generated build files are not part of the project.\nDockerfile\n.dockerignore\n.containerignore\n',
    );
    expect(ignoreFile('*.log')).toBe(`*.log\n${ignoreFile(undefined)}`);
  });

  it('baseInfoFor takes kind and language version from the catalog', () => {
    const config = parseConfig({ registry: { host: '127.0.0.1:5000' } });
    expect(baseInfoFor(config, { host: '127.0.0.1:5000', repo: 'svcbuild/base/python-3.13', digest: D }, 'python')).toEqual({
      name: 'python-3.13',
      kind: 'python',
      ref: `127.0.0.1:5000/svcbuild/base/python-3.13@${D}`,
      languageVersion: '3.13',
    });
    expect(baseInfoFor(config, { host: '127.0.0.1:5000', repo: 'other/img', digest: D }, 'node')).toEqual({
      name: 'img',
      kind: 'node',
      ref: `127.0.0.1:5000/other/img@${D}`,
    });
  });

  it('chart refs round-trip', () => {
    const s = formatChartRef('oci://127.0.0.1:5000/svcbuild/charts/acme-a', '0.1.0-build-x1', D);
    expect(s).toBe(`oci://127.0.0.1:5000/svcbuild/charts/acme-a:0.1.0-build-x1@${D}`);
    expect(parseChartRef(s)).toEqual({
      url: 'oci://127.0.0.1:5000/svcbuild/charts/acme-a',
      host: '127.0.0.1:5000',
      repo: 'svcbuild/charts/acme-a',
      name: 'acme-a',
      version: '0.1.0-build-x1',
      digest: D,
    });
    expect(parseChartRef('oci://h/charts/a:1.0.0')).toBeUndefined();
  });

  it('deployCommand is deployArgs minus what the flags turn off', () => {
    const chart = parseChartRef(`oci://127.0.0.1:5000/svcbuild/charts/acme-a:0.1.0-build-1@${D}`)!;
    const all = deployCommand({
      release: 'acme-a',
      chart,
      namespace: 'acme',
      wait: true,
      rollbackOnFailure: true,
      plainHttp: true,
      valuesFile: '/tmp/v.yaml',
    });
    expect(all).toEqual([
      'upgrade',
      '--install',
      'acme-a',
      'oci://127.0.0.1:5000/svcbuild/charts/acme-a',
      '--version',
      '0.1.0-build-1',
      '--namespace',
      'acme',
      '--rollback-on-failure',
      '--wait=watcher',
      '--timeout',
      '5m',
      '--values',
      '/tmp/v.yaml',
      '--plain-http',
    ]);
    expect(
      deployCommand({
        release: 'acme-a',
        chart,
        namespace: 'acme',
        wait: false,
        rollbackOnFailure: false,
        plainHttp: false,
        timeout: '90s',
      }),
    ).toEqual([
      'upgrade',
      '--install',
      'acme-a',
      'oci://127.0.0.1:5000/svcbuild/charts/acme-a',
      '--version',
      '0.1.0-build-1',
      '--namespace',
      'acme',
      '--timeout',
      '90s',
    ]);
  });

  it('helmFailureKind: the cluster not answering is upstream, a release never ready is the project', () => {
    expect(
      helmFailureKind(
        'Error: Kubernetes cluster unreachable: Get "https://127.0.0.1:1/version": dial tcp 127.0.0.1:1: connect: connection refused',
      ),
    ).toBe('upstream');
    expect(
      helmFailureKind(
        'Error: UPGRADE FAILED: release acme-a failed, and has been rolled back due to rollback-on-failure being set: context deadline exceeded',
      ),
    ).toBe('project');
  });

  it('parseChartSettings maps a route path and refuses unknown keys', () => {
    expect(parseChartSettings({ route: '/shop', port: 9000, env: { A: 'b' } })).toEqual({
      route: { kind: 'none', path: '/shop' },
      port: 9000,
      env: { A: 'b' },
    });
    expect(() => parseChartSettings({ image: 'x' })).toThrow('--values.image: unknown key');
  });

  it('statusReport keeps unparseable failures as text', () => {
    const at = new Date('2025-01-01T00:00:00Z');
    expect(statusReport('Error', undefined, 'not json', at)).toEqual({
      event: 'build-finished',
      status: 'Error',
      succeeded: false,
      failures: ['not json'],
      at: '2025-01-01T00:00:00.000Z',
    });
    expect(statusReport('Succeeded', 'b1', 'null', at).failures).toEqual([]);
  });

  it('writeOutput replaces the file whole and leaves no temporary file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'svcbuild-out-'));
    try {
      await writeOutput(join(dir, 'o'), 'image-digest', 'old');
      await writeOutput(join(dir, 'o'), 'image-digest', D);
      expect(await readdir(join(dir, 'o'))).toEqual(['image-digest']);
      expect(await readFile(join(dir, 'o', 'image-digest'), 'utf8')).toBe(D);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('helmFailureKind on real helm output', () => {
  it('blames the project for a rollback even when digits in digests look like HTTP statuses', () => {
    // GIVEN helm 4's output for a release that never became ready (taken from the bed), whose
    // build id contains "503"
    const out = [
      'Pulled: 127.0.0.1:36235/svcbuild/charts/local-shop:0.1.0-build-20261123065503-07d1a9',
      'Digest: sha256:a2fdb22998abecb146a757cdf33c1e38d96905d32e024720137428e1eceabbee',
      'Error: UPGRADE FAILED: release local-shop failed, and has been rolled back due to rollback-on-failure being set: resource Deployment/acme/local-shop not ready. status: InProgress, message: Pending termination: 1',
      'context deadline exceeded',
    ].join('\n');
    expect(helmFailureKind(out)).toBe('project');
    expect(
      helmFailureKind(
        'Error: Kubernetes cluster unreachable: Get "https://127.0.0.1:1/version": dial tcp 127.0.0.1:1: connect: connection refused',
      ),
    ).toBe('upstream');
  });
});
