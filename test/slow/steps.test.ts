/**
 * The workflow's step commands chained as the Argo Workflow runs them: one process per step,
 * with the template's own flags, handing each other nothing but the digests in the output
 * files. source -> context -> build-image (buildah) -> overlay -> publish -> promote ->
 * delete of the unpromoted tag; then the promoted image must run and answer HTTP 200.
 */
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { RegistryClient } from '../../src/registry/client.js';
import { run, runOk } from '../../src/util/exec.js';
import { ROOT, svcbuild } from '../helpers/cli.js';
import { runImage, waitForHttp } from '../helpers/container.js';
import { freePort } from '../helpers/registry.js';
import { writeFile } from 'node:fs/promises';

const registry = inject('registryHost');
const client = new RegistryClient({ host: registry, plainHttp: true });
const REPO = 'svcbuild/acme-hello';
const IMAGE_REPO = `${registry}/${REPO}`;
const BUILD_ID = 'steps01';
const DIGEST = /^sha256:[a-f0-9]{64}$/;
let work: string;
let env: Record<string, string>;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'svcbuild-steps-'));
  env = { SVCBUILD_REGISTRY: registry, SVCBUILD_STATE_DIR: join(work, 'state') };
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** An output parameter as Argo reads it: the file's whole content. */
const output = (dir: string, name: string) => readFile(join(dir, name), 'utf8');

describe('the workflow steps, one process each, chained by digests', () => {
  it(
    'source -> context -> build-image -> overlay -> publish -> promote -> delete, and the image runs',
    { timeout: 1_800_000 },
    async () => {
      // GIVEN the node-22 base image by digest (built once, cached in buildah's storage)
      const bases = await svcbuild(['base', 'build', 'node-22', '--json'], env);
      expect(bases.code, bases.stderr).toBe(0);
      const baseRef: string = (JSON.parse(bases.stdout) as Array<{ ref: string }>)[0]!.ref;
      expect(baseRef).toMatch(new RegExp(`^${registry}/svcbuild/base/node-22@sha256:[a-f0-9]{64}$`));

      // AND the node example uploaded as an archive artifact (what the API pushes)
      const tgz = join(work, 'upload.tar.gz');
      await runOk('tar', ['-czf', tgz, '-C', join(ROOT, 'examples/node-hello'), '.']);
      const upload = await client.pushArtifact({
        repo: 'svcbuild/uploads',
        artifactType: 'application/vnd.svcbuild.upload.v1',
        files: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', bytes: await readFile(tgz) }],
      });

      // WHEN the source step runs with the template's flags
      const o1 = join(work, 'out-source');
      const source = await svcbuild(
        [
          'source',
          '--kind=archive',
          `--archive-ref=${registry}/svcbuild/uploads@${upload.digest}`,
          '--git-url=',
          '--git-ref=',
          '--git-subdir=',
          `--push=${IMAGE_REPO}:source-${BUILD_ID}`,
          `--outputs=${o1}`,
        ],
        env,
      );
      // THEN it writes the digest of the source artifact it pushed, and nothing else
      expect(source.code, source.stderr).toBe(0);
      const sourceDigest = await output(o1, 'source-digest');
      expect(sourceDigest).toMatch(DIGEST);
      expect(await readdir(o1)).toEqual(['source-digest']);
      const sourceManifest = await client.getManifest(REPO, `source-${BUILD_ID}`);
      expect(sourceManifest.digest).toBe(sourceDigest);
      expect((sourceManifest.json as { artifactType?: string }).artifactType).toBe('application/vnd.svcbuild.source.v1');

      // AND the same project pushed again gives the same digest (the tar.gz is deterministic)
      const again = await svcbuild(
        [
          'source',
          '--kind=archive',
          `--archive-ref=${registry}/svcbuild/uploads@${upload.digest}`,
          `--push=${IMAGE_REPO}:source-again`,
          `--outputs=${join(work, 'out-again')}`,
        ],
        env,
      );
      expect(again.code, again.stderr).toBe(0);
      expect(await output(join(work, 'out-again'), 'source-digest')).toBe(sourceDigest);

      // WHEN the build pod's init container writes the context
      const ws = join(work, 'workspace');
      const context = await svcbuild(
        ['context', `--source=${IMAGE_REPO}@${sourceDigest}`, '--language=node', `--base=${baseRef}`, `--out=${ws}`],
        env,
      );
      // THEN the workspace holds the project, the Dockerfile FROM the base by digest and the ignore file
      expect(context.code, context.stderr).toBe(0);
      expect((await readdir(ws)).sort()).toEqual(['.dockerignore', 'Dockerfile', 'package.json', 'server.js']);
      const dockerfile = await readFile(join(ws, 'Dockerfile'), 'utf8');
      expect(dockerfile).toContain(`FROM ${baseRef}\n`);
      expect(dockerfile).toContain('ENTRYPOINT ["node","/project/app/server.js"]\n');
      expect(await readFile(join(ws, '.dockerignore'), 'utf8')).toBe(
        '# Written by svcbuild: the generated build files are not part of the project.\nDockerfile\n.dockerignore\n.containerignore\n',
      );

      // WHEN the builder container (the buildah swap) builds and pushes :build-<id>
      const o2 = join(work, 'out-build');
      const build = await svcbuild(
        [
          'build-image',
          '--engine=buildah',
          '--isolation=chroot',
          `--context=${ws}`,
          `--dockerfile=${ws}/Dockerfile`,
          `--destination=${IMAGE_REPO}:build-${BUILD_ID}`,
          `--digest-file=${o2}/image-digest`,
          '--plain-http',
        ],
        env,
      );
      // THEN the digest file names what the tag points at
      expect(build.code, build.stderr).toBe(0);
      const imageDigest = await output(o2, 'image-digest');
      expect(imageDigest).toMatch(DIGEST);
      expect((await client.getManifest(REPO, `build-${BUILD_ID}`)).digest).toBe(imageDigest);

      // WHEN the overlay step runs (today's overlay CLI: --push is a switch and there is no
      // --outputs, unlike the template's --push=<ref> --outputs=DIR; see the report)
      // (the template's flags: --push=<repo>:overlay-<id> --outputs=DIR)
      const oOverlay = join(work, 'out-overlay');
      const overlay = await svcbuild(
        [
          'overlay',
          `--base=${baseRef}`,
          `--image=${IMAGE_REPO}@${imageDigest}`,
          `--push=${IMAGE_REPO}:overlay-1`,
          `--outputs=${oOverlay}`,
          '--json',
        ],
        env,
      );
      expect(overlay.code, overlay.stderr).toBe(0);
      const overlayDigest: string = JSON.parse(overlay.stdout).artifact;
      expect(overlayDigest).toMatch(DIGEST);
      expect(await readFile(join(oOverlay, 'overlay-digest'), 'utf8')).toBe(overlayDigest);

      // WHEN publish runs with the template's flags
      const o3 = join(work, 'out-publish');
      const publish = await svcbuild(
        [
          'publish',
          `--image=${IMAGE_REPO}@${imageDigest}`,
          `--overlay=${IMAGE_REPO}@${overlayDigest}`,
          `--base=${baseRef}`,
          '--tenant=acme',
          '--service=hello',
          `--build-id=${BUILD_ID}`,
          '--values={"route":"/svc/hello","replicas":2}',
          `--outputs=${o3}`,
        ],
        env,
      );
      // THEN chart-ref names the chart by version and digest, and the chart holds the build by digest
      expect(publish.code, publish.stderr).toBe(0);
      const chartRef = await output(o3, 'chart-ref');
      const m = new RegExp(`^oci://${registry}/svcbuild/charts/acme-hello:0\\.1\\.0-build-${BUILD_ID}@(sha256:[a-f0-9]{64})$`).exec(
        chartRef,
      );
      expect(m, chartRef).not.toBeNull();
      expect((await client.getManifest('svcbuild/charts/acme-hello', `0.1.0-build-${BUILD_ID}`)).digest).toBe(m![1]);
      const helmHome = join(work, 'helm');
      const shown = await runOk(
        'helm',
        ['show', 'values', `oci://${registry}/svcbuild/charts/acme-hello`, '--version', `0.1.0-build-${BUILD_ID}`, '--plain-http'],
        {
          env: { ...process.env, HELM_CONFIG_HOME: helmHome, HELM_CACHE_HOME: helmHome, HELM_DATA_HOME: helmHome },
        },
      );
      const values = parseYaml(shown.stdout) as Record<string, any>;
      expect(values.image).toEqual({ repository: IMAGE_REPO, digest: imageDigest });
      expect(values.overlay.repository).toBe(IMAGE_REPO);
      expect(values.overlay.digest).toBe(overlayDigest);
      expect(values.base).toEqual({ repository: baseRef.split('@')[0], digest: baseRef.split('@')[1] });
      expect(values.route.path).toBe('/svc/hello');
      expect(values.replicas).toBe(2);
      expect(values.port).toBe(8080);
      expect(values.command).toEqual(['node', '/project/app/server.js']);
      // AND the image is promoted as release-<id>
      expect((await client.getManifest(REPO, `release-${BUILD_ID}`)).digest).toBe(imageDigest);

      // WHEN the build is promoted by digest and the unpromoted build tag deleted (the exit handler's command)
      const tag = await svcbuild(['registry', 'tag', `--ref=${IMAGE_REPO}@${imageDigest}`, '--tag=live'], env);
      expect(tag.code, tag.stderr).toBe(0);
      expect(tag.stdout).toBe(`tagged ${IMAGE_REPO}:live -> ${imageDigest}\n`);
      const del = await svcbuild(['registry', 'delete', `--ref=${IMAGE_REPO}:build-${BUILD_ID}`, '--missing-ok', '--json'], env);
      expect(del.code, del.stderr).toBe(0);
      expect(JSON.parse(del.stdout)).toEqual({
        ref: `${IMAGE_REPO}:build-${BUILD_ID}`,
        result: 'deleted',
        digest: imageDigest,
        imageDeleted: false,
        keptBy: expect.arrayContaining([`release-${BUILD_ID}`, 'live']),
      });
      // THEN the build tag is gone, the promoted tags still name the image
      const tags = await client.listTags(REPO);
      expect(tags).not.toContain(`build-${BUILD_ID}`);
      expect(tags).toEqual(expect.arrayContaining(['live', `release-${BUILD_ID}`, `source-${BUILD_ID}`]));
      expect((await client.getManifest(REPO, 'live')).digest).toBe(imageDigest);
      // AND deleting it again is fine with --missing-ok, a not-found (exit 4) without
      const again1 = await svcbuild(['registry', 'delete', `--ref=${IMAGE_REPO}:build-${BUILD_ID}`, '--missing-ok'], env);
      expect([again1.code, again1.stdout]).toEqual([0, `${IMAGE_REPO}:build-${BUILD_ID}: not there, nothing to delete\n`]);
      const again2 = await svcbuild(['registry', 'delete', `--ref=${IMAGE_REPO}:build-${BUILD_ID}`], env);
      expect(again2.code).toBe(4);
      expect(again2.stderr).toContain(`${IMAGE_REPO}:build-${BUILD_ID} does not exist (pass --missing-ok to accept that)`);

      // AND the promoted image runs and answers under its CONTEXT_ROOT
      const c = await runImage(`${IMAGE_REPO}:live`, { CONTEXT_ROOT: '/svc/hello' });
      try {
        const r = await waitForHttp(`http://127.0.0.1:${c.port}/svc/hello/`);
        expect(r.status, await c.logs()).toBe(200);
        const body = JSON.parse(r.body);
        expect(body.service).toBe('node-hello');
        expect(body.expressFrom).toBe('/home/user/node_modules/express/index.js');
        expect(body.nanoidFrom).toBe('/project/app/node_modules/nanoid/index.cjs');
      } finally {
        await c.stop();
      }

      // WHEN deploy runs without a reachable cluster (a kubeconfig for a closed port)
      const port = await freePort();
      const kubeconfig = join(work, 'kubeconfig');
      await writeFile(
        kubeconfig,
        `apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: "https://127.0.0.1:${port}", insecure-skip-tls-verify: true}\nusers:\n- name: u\n  user: {token: t}\ncontexts:\n- name: x\n  context: {cluster: c, user: u, namespace: acme}\ncurrent-context: x\n`,
      );
      const o4 = join(work, 'out-deploy');
      const deploy = await svcbuild(
        [
          'deploy',
          `--chart=${chartRef}`,
          '--namespace=acme',
          '--tenant=acme',
          '--service=hello',
          '--values={"route":"/svc/hello","replicas":2}',
          '--wait',
          '--rollback-on-failure',
          `--outputs=${o4}`,
        ],
        { ...env, KUBECONFIG: kubeconfig },
      );
      // THEN it fails as an upstream failure (exit 6, retried), saying what and where, and writes no revision
      expect(deploy.code, deploy.stderr).toBe(6);
      expect(deploy.stderr).toContain(
        `svcbuild deploy: error: helm upgrade --install acme-hello (chart oci://${registry}/svcbuild/charts/acme-hello:0.1.0-build-${BUILD_ID}) in namespace acme failed`,
      );
      expect(deploy.stderr).toMatch(/connection refused|cluster unreachable/i);
      expect((await run('ls', [o4])).code).not.toBe(0);

      // AND the exit handler's report is one JSON line
      const report = await svcbuild(['report', '--status=Succeeded', `--build-id=${BUILD_ID}`, '--failures='], env);
      expect(report.code).toBe(0);
      const lines = report.stdout.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(JSON.parse(lines[0]!)).toEqual({
        event: 'build-finished',
        status: 'Succeeded',
        succeeded: true,
        buildId: BUILD_ID,
        failures: [],
        at: expect.any(String),
      });
    },
  );

  it('source fetches a git ref (shallow) from a git daemon and refuses a bad subdirectory', { timeout: 120_000 }, async () => {
    // GIVEN a repository served by git daemon on loopback, the service in svc/
    const repos = join(work, 'repos');
    const repo = join(repos, 'hello.git');
    await runOk('git', ['init', '--quiet', '-b', 'main', repo]);
    await runOk('cp', ['-r', join(ROOT, 'examples/node-hello'), join(repo, 'svc')]);
    await runOk('git', ['-C', repo, '-c', 'user.email=t@t', '-c', 'user.name=t', 'add', '.']);
    await runOk('git', ['-C', repo, '-c', 'user.email=t@t', '-c', 'user.name=t', 'commit', '--quiet', '-m', 'x']);
    const commit = (await runOk('git', ['-C', repo, 'rev-parse', 'HEAD'])).stdout.trim();
    const port = await freePort();
    const { spawn } = await import('node:child_process');
    const daemon = spawn(
      'git',
      ['daemon', '--reuseaddr', `--base-path=${repos}`, '--export-all', `--port=${port}`, '--listen=127.0.0.1', repos],
      { stdio: 'ignore' },
    );
    try {
      await new Promise((r) => setTimeout(r, 500));
      // WHEN the source step fetches main, project in svc/
      const out = join(work, 'out-git');
      const res = await svcbuild(
        [
          'source',
          '--kind=git',
          '--archive-ref=',
          `--git-url=git://127.0.0.1:${port}/hello.git`,
          '--git-ref=main',
          '--git-subdir=svc',
          `--push=${IMAGE_REPO}:source-git1`,
          `--outputs=${out}`,
          '--json',
        ],
        env,
      );
      // THEN it pushes the project with the commit recorded
      expect(res.code, res.stderr).toBe(0);
      const json = JSON.parse(res.stdout);
      expect(json).toEqual({
        ref: `${IMAGE_REPO}@${json.digest}`,
        digest: await output(out, 'source-digest'),
        kind: 'node',
        files: 2,
        bytes: expect.any(Number),
        commit,
      });
      const m = await client.getManifest(REPO, 'source-git1');
      expect((m.json as { annotations?: Record<string, string> }).annotations).toEqual({
        'org.opencontainers.image.source': `git://127.0.0.1:${port}/hello.git`,
        'org.opencontainers.image.revision': commit,
        'svcbuild.io/kind': 'node',
      });
      // AND a subdirectory or ref that is not there is a bad input (exit 2) naming the flag
      const bad = await svcbuild(
        [
          'source',
          '--kind=git',
          `--git-url=git://127.0.0.1:${port}/hello.git`,
          '--git-ref=main',
          '--git-subdir=nope',
          `--push=${IMAGE_REPO}:source-git2`,
          `--outputs=${out}`,
        ],
        env,
      );
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain('--git-subdir: no such directory at main');
      const missing = await svcbuild(
        [
          'source',
          '--kind=git',
          `--git-url=git://127.0.0.1:${port}/hello.git`,
          '--git-ref=no-such-branch',
          `--push=${IMAGE_REPO}:source-git3`,
          `--outputs=${out}`,
        ],
        env,
      );
      expect(missing.code).toBe(2);
      expect(missing.stderr).toContain(`cannot fetch git://127.0.0.1:${port}/hello.git at no-such-branch`);
    } finally {
      daemon.kill();
    }
  });
});
