/**
 * The step commands refuse bad flags before touching the registry, the network or the disk:
 * exit 2 and one line per problem, each naming its flag. The registry host configured here
 * is a closed port, so any I/O would show up as an upstream error instead.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../../src/cli/main.js';
import { parseConfig } from '../../src/config/schema.js';

const HOST = '127.0.0.1:9';
const D = `sha256:${'a'.repeat(64)}`;
let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'svcbuild-step-flags-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

function capture() {
  const s = new PassThrough();
  let text = '';
  s.on('data', (c: Buffer) => (text += c.toString()));
  return { stream: s, text: () => text };
}

async function svcbuild(args: string[]) {
  const stdout = capture();
  const stderr = capture();
  const code = await cli(args, {
    config: async () => parseConfig({ registry: { host: HOST } }),
    stdout: stdout.stream,
    stderr: stderr.stream,
  });
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}

/** The `  - --flag: message` lines of an InputError. */
const problems = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('  - '));

describe('step commands: --help', () => {
  it.each([['source'], ['context'], ['build-image'], ['publish'], ['deploy'], ['report'], ['registry']])(
    '%s --help prints its usage and exits 0',
    async (cmd) => {
      // GIVEN any step command WHEN asked for help THEN it prints its usage and exits 0
      const r = await svcbuild([cmd, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout.startsWith(`usage: svcbuild ${cmd}`)).toBe(true);
      expect(r.stderr).toBe('');
    },
  );

  it('lists the step commands in the top-level usage', async () => {
    const r = await svcbuild(['--help']);
    for (const cmd of ['source', 'context', 'build-image', 'publish', 'deploy', 'report'])
      expect(r.stdout).toMatch(new RegExp(`^  ${cmd} +\\S`, 'm'));
  });
});

describe('svcbuild source: flags', () => {
  it('names every missing flag', async () => {
    const r = await svcbuild(['source']);
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe('svcbuild source: error: bad arguments (see `svcbuild source --help`)');
    expect(problems(r.stderr)).toEqual(['  - --kind: required: archive or git', '  - --push: required', '  - --outputs: required']);
  });

  it('refuses an archive source with git flags, a tagless push and a relative outputs dir', async () => {
    const r = await svcbuild([
      'source',
      '--kind=archive',
      `--archive-ref=${HOST}/svcbuild/up:latest`,
      '--git-url=https://x/y',
      '--push=svcbuild/app',
      '--outputs=out',
    ]);
    expect(r.code).toBe(2);
    expect(problems(r.stderr)).toEqual([
      '  - --push: "svcbuild/app": neither a tag nor a digest',
      '  - --outputs: "out" must be an absolute path',
      '  - --git-url: must be empty when --kind=archive',
      `  - --archive-ref: "${HOST}/svcbuild/up:latest" must name a digest: repository@sha256:<64 hex>`,
    ]);
  });

  it('accepts the empty flags the template passes for the other kind, and checks git url and ref', async () => {
    const r = await svcbuild([
      'source',
      '--kind=git',
      '--archive-ref=',
      '--git-url=http://example.com/r.git',
      '--git-ref=--upload-pack=x',
      '--git-subdir=../up',
      `--push=${HOST}/svcbuild/app:source-1`,
      '--outputs=/tmp/o',
    ]);
    expect(r.code).toBe(2);
    expect(problems(r.stderr)).toEqual([
      '  - --git-url: use https:// (http:// is allowed only for loopback hosts)',
      '  - --git-ref: "--upload-pack=x" is not a branch, tag or commit name (letters, digits, . _ / -; no "..")',
      '  - --git-subdir: "../up" must be a relative path inside the repository',
    ]);
  });

  it('refuses a push to another registry than the configured one', async () => {
    const r = await svcbuild([
      'source',
      '--kind=archive',
      `--archive-ref=svcbuild/up@${D}`,
      '--push=other.example:5000/svcbuild/app:s',
      '--outputs=/tmp/o',
    ]);
    expect(problems(r.stderr)).toEqual([
      `  - --push: "other.example:5000/svcbuild/app:s" is on registry other.example:5000, not on the configured registry ${HOST} (SVCBUILD_REGISTRY)`,
    ]);
  });

  it('turns an unknown flag into exit 2', async () => {
    const r = await svcbuild(['source', '--frobnicate=1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("Unknown option '--frobnicate'");
  });
});

describe('svcbuild context: flags', () => {
  it('names every bad flag', async () => {
    const r = await svcbuild([
      'context',
      `--source=svcbuild/app:source-1`,
      '--language=cobol',
      '--base=svcbuild/base/node-22:latest',
      '--out=workspace',
    ]);
    expect(r.code).toBe(2);
    expect(problems(r.stderr)).toEqual([
      '  - --source: "svcbuild/app:source-1" must name a digest: repository@sha256:<64 hex>',
      '  - --language: "cobol" is not one of python, node, binary',
      '  - --base: "svcbuild/base/node-22:latest" must name a digest: repository@sha256:<64 hex>',
      '  - --out: "workspace" must be an absolute path',
    ]);
  });
});

describe('svcbuild build-image: flags', () => {
  it('refuses kaniko, a missing context and a digest destination', async () => {
    const r = await svcbuild([
      'build-image',
      '--engine=kaniko',
      `--context=${join(work, 'none')}`,
      `--destination=${HOST}/svcbuild/app@${D}`,
      '--digest-file=digest',
      '--isolation=rootless',
    ]);
    expect(r.code).toBe(2);
    expect(problems(r.stderr)).toEqual([
      '  - --engine: Kaniko runs as its own container (/kaniko/executor); svcbuild drives buildah only',
      `  - --context: ${join(work, 'none')} is not a directory`,
      `  - --dockerfile: ${join(work, 'none', 'Dockerfile')} does not exist (run \`svcbuild context\` first)`,
      `  - --destination: "${HOST}/svcbuild/app@${D}" must not carry a digest`,
      `  - --destination: "${HOST}/svcbuild/app@${D}" must carry a tag: repository:tag`,
      '  - --digest-file: "digest" must be an absolute path',
      '  - --isolation: "rootless" is not chroot or oci',
    ]);
  });
});

describe('svcbuild publish: flags', () => {
  it('names every bad flag, --values keys included', async () => {
    const r = await svcbuild([
      'publish',
      `--image=svcbuild/acme-hello@${D}`,
      `--overlay=svcbuild/other@${D}`,
      '--base=svcbuild/base/node-22:v1',
      '--tenant=Acme',
      '--service=hello',
      '--build-id=no/slash',
      '--values={"port":"80","colour":"blue","route":7}',
      '--outputs=/tmp/o',
    ]);
    expect(r.code).toBe(2);
    expect(problems(r.stderr)).toEqual([
      '  - --base: "svcbuild/base/node-22:v1" must name a digest: repository@sha256:<64 hex>',
      `  - --overlay: must be in the image's repository ${HOST}/svcbuild/acme-hello`,
      '  - --tenant: "Acme" is not a tenant: a lower-case DNS label of at most 30 characters',
      '  - --build-id: "no/slash" must be 1 to 64 letters, digits or hyphens',
      '  - --values.port: must be an integer port',
      '  - --values.colour: unknown key; allowed: port, route, env, envFrom, resources, replicas, imagePullSecrets',
      '  - --values.route: must be a path ("/shop") or {kind: none|ingress|httproute|platform, path, ...}',
    ]);
  });

  it('refuses --values that is not a JSON object', async () => {
    const r = await svcbuild([
      'publish',
      `--image=svcbuild/a@${D}`,
      `--overlay=svcbuild/a@${D}`,
      `--base=svcbuild/b@${D}`,
      '--tenant=acme',
      '--service=a',
      '--build-id=1',
      '--values=[1]',
      '--outputs=/tmp/o',
    ]);
    expect(problems(r.stderr)).toEqual(['  - --values: must be a JSON object']);
  });
});

describe('svcbuild deploy: flags', () => {
  const chart = `oci://${HOST}/svcbuild/charts/acme-hello:0.1.0-build-1@${D}`;
  it('names every bad flag', async () => {
    const r = await svcbuild([
      'deploy',
      '--chart=oci://x/charts/acme-hello:0.1.0',
      '--namespace=Acme_NS',
      '--tenant=acme',
      '--service=hello',
      '--values={"env":{"PORT":"1"}}',
      '--timeout=soon',
      '--outputs=/tmp/o',
    ]);
    expect(r.code).toBe(2);
    expect(problems(r.stderr)).toEqual([
      '  - --chart: "oci://x/charts/acme-hello:0.1.0" is not oci://host/path/name:version@sha256:<64 hex> (the chart-ref publish writes)',
      '  - --namespace: "Acme_NS" is not a namespace name',
      '  - --timeout: "soon" is not a duration like 90s or 5m',
      '  - --values.env.PORT: is set by svcbuild from port and route.path',
    ]);
  });

  it("refuses another service's chart", async () => {
    const r = await svcbuild(['deploy', `--chart=${chart}`, '--namespace=acme', '--tenant=acme', '--service=other', '--outputs=/tmp/o']);
    expect(problems(r.stderr)).toEqual(['  - --chart: is the chart of acme-hello, not of acme-other']);
  });

  it('reaches the registry only once the flags are good (closed port: exit 6)', async () => {
    const r = await svcbuild([
      'deploy',
      `--chart=${chart}`,
      '--namespace=acme',
      '--tenant=acme',
      '--service=hello',
      '--wait',
      '--rollback-on-failure',
      `--outputs=${work}`,
    ]);
    expect(r.code).toBe(6);
    expect(r.stderr).toContain(`svcbuild deploy: error: registry ${HOST} unreachable`);
  });
});

describe('svcbuild report', () => {
  it('prints one JSON line with the failures parsed', async () => {
    const r = await svcbuild(['report', '--status=Failed', '--build-id=abc123', '--failures=[{"displayName":"build","message":"exit 7"}]']);
    expect(r.code).toBe(0);
    expect(r.stdout.endsWith('\n')).toBe(true);
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    expect(JSON.parse(r.stdout)).toEqual({
      event: 'build-finished',
      status: 'Failed',
      succeeded: false,
      buildId: 'abc123',
      failures: [{ displayName: 'build', message: 'exit 7' }],
      at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
  });

  it('requires --status', async () => {
    const r = await svcbuild(['report', '--build-id=1']);
    expect([r.code, problems(r.stderr)]).toEqual([2, ['  - --status: required: the workflow status']]);
  });
});

describe('svcbuild registry delete|tag: flags', () => {
  it('delete needs --ref and refuses tag and digest together', async () => {
    expect(problems((await svcbuild(['registry', 'delete'])).stderr)).toEqual(['  - --ref: required: repository:tag or repository@digest']);
    const r = await svcbuild(['registry', 'delete', `--ref=svcbuild/a:build-1@${D}`]);
    expect([r.code, problems(r.stderr)]).toEqual([2, ['  - --ref: give a tag or a digest, not both']]);
  });

  it('tag needs a digest and a valid tag', async () => {
    const r = await svcbuild(['registry', 'tag', '--ref=svcbuild/a:build-1', '--tag=-bad']);
    expect(r.code).toBe(2);
    expect(problems(r.stderr)).toEqual([
      '  - --ref: "svcbuild/a:build-1" must name a digest: repository@sha256:<64 hex>',
      '  - --ref: "svcbuild/a:build-1" must not carry a tag (by digest only)',
      '  - --tag: "-bad" must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}',
    ]);
  });

  it('an unknown subcommand prints the usage and exits 2', async () => {
    const r = await svcbuild(['registry', 'prune']);
    expect(r.code).toBe(2);
    expect(r.stderr.startsWith('usage: svcbuild registry')).toBe(true);
  });
});
