/**
 * The published chart of a build, run as its Deployment says: `helm template` of the chart
 * pulled from the registry, then its pod emulated with podman (init containers first, then
 * the service; emptyDir and ConfigMap volumes as host directories; the rendered user,
 * read-only root filesystem, command and env). Both modes must answer HTTP 200: image mode,
 * and overlay mode where the init container fetches the overlay by digest into /project.
 */
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { run, runOk } from '../../src/util/exec.js';
import { ROOT, svcbuild } from '../helpers/cli.js';
import { waitForHttp } from '../helpers/container.js';
import { freePort } from '../helpers/registry.js';

const registry = inject('registryHost');
let stateDir: string;
let work: string;
let build: any;

beforeAll(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'svcbuild-chart-run-'));
  work = await mkdtemp(join(tmpdir(), 'svcbuild-pod-'));
  const res = await svcbuild(['build', join(ROOT, 'examples/node-hello'), '--json'], {
    SVCBUILD_REGISTRY: registry,
    SVCBUILD_STATE_DIR: stateDir,
  });
  expect(res.code, res.stderr).toBe(0);
  build = JSON.parse(res.stdout);
}, 900_000);

afterAll(async () => {
  await rm(stateDir, { recursive: true, force: true });
  await rm(work, { recursive: true, force: true });
});

const PODMAN = ['--runtime', 'runc'];

/** Runs the Deployment's pod: init containers to completion, then the first container, detached. */
async function runPod(docs: any[], dir: string): Promise<{ stop: () => Promise<void>; logs: () => Promise<string> }> {
  const deploy = docs.find((d) => d.kind === 'Deployment');
  const spec = deploy.spec.template.spec;
  const hostPaths = new Map<string, string>();
  for (const v of spec.volumes ?? []) {
    const p = join(dir, v.name);
    await mkdir(p, { recursive: true });
    if (v.configMap) {
      const cm = docs.find((d) => d.kind === 'ConfigMap' && d.metadata.name === v.configMap.name);
      for (const [k, text] of Object.entries(cm.data ?? {})) await writeFile(join(p, k), String(text));
    } else {
      await runOk('chown', [`${spec.securityContext.runAsUser}:${spec.securityContext.fsGroup}`, p]);
      await chmod(p, 0o770);
    }
    hostPaths.set(v.name, p);
  }
  const args = (c: any, detach: boolean) => {
    const a = [
      ...PODMAN,
      'run',
      detach ? '-d' : '--rm',
      '--network',
      'host',
      '--tls-verify=false',
      '--ulimit',
      'nofile=1024:1024',
      '--ulimit',
      'nproc=1024:1024',
    ];
    const sc = { ...spec.securityContext, ...(c.securityContext ?? {}) };
    a.push('--user', `${sc.runAsUser}:${sc.runAsGroup}`);
    if (sc.readOnlyRootFilesystem) a.push('--read-only');
    if (sc.capabilities?.drop?.includes('ALL')) a.push('--cap-drop', 'ALL');
    if (sc.allowPrivilegeEscalation === false) a.push('--security-opt', 'no-new-privileges');
    for (const m of c.volumeMounts ?? []) a.push('-v', `${hostPaths.get(m.name)}:${m.mountPath}${m.readOnly ? ':ro' : ''}`);
    for (const e of c.env ?? []) if (e.value !== undefined) a.push('-e', `${e.name}=${e.value}`);
    if (c.command) a.push('--entrypoint', JSON.stringify(c.command));
    a.push(c.image, ...(c.args ?? []));
    return a;
  };
  for (const c of spec.initContainers ?? []) {
    const r = await run('podman', args(c, false));
    expect(r.code, `init container ${c.name}: ${r.output}`).toBe(0);
  }
  const id = (await runOk('podman', args(spec.containers[0], true))).stdout.trim();
  return {
    stop: async () => void (await run('podman', [...PODMAN, 'rm', '-f', '-t', '2', id])),
    logs: async () => (await run('podman', [...PODMAN, 'logs', id])).output,
  };
}

describe('the published chart runs', () => {
  for (const mode of ['image', 'overlay'] as const) {
    it(`in ${mode} mode`, { timeout: 300_000 }, async () => {
      // GIVEN the chart of the build, pulled from the registry and rendered in this mode
      const port = await freePort();
      const rendered = await runOk('helm', [
        'template',
        'svc',
        build.chart.ref,
        '--version',
        build.chart.version,
        '--plain-http',
        '--set',
        `mode=${mode}`,
        '--set',
        `port=${port}`,
      ]);
      const docs = parseAllDocuments(rendered.stdout)
        .map((d) => d.toJS())
        .filter(Boolean);
      const deploy = docs.find((d: any) => d.kind === 'Deployment');
      const spec = deploy.spec.template.spec;
      if (mode === 'overlay') {
        expect(spec.containers[0].image).toBe(build.base);
        expect(spec.initContainers.map((c: any) => c.name)).toEqual(['fetch-overlay']);
      } else {
        expect(spec.containers[0].image).toBe(build.image);
      }
      // WHEN its pod runs
      const pod = await runPod(docs, await mkdtemp(join(work, `${mode}-`)));
      try {
        // THEN the service answers under its route on its port
        const r = await waitForHttp(`http://127.0.0.1:${port}/node-hello/`);
        expect(r.status, await pod.logs()).toBe(200);
        expect(JSON.parse(r.body).nanoidFrom).toBe('/project/app/node_modules/nanoid/index.cjs');
      } finally {
        await pod.stop();
      }
    });
  }
});
