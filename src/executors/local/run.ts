/**
 * `svcbuild run`: a built service on this machine, for testing, with podman (daemonless):
 * from its image, or — as the chart's overlay mode does in a cluster — from its base image
 * with the overlay zip unpacked at /project. Host network; the service listens on PORT.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../../config/schema.js';
import { InputError } from '../../errors.js';
import { run, runOk } from '../../util/exec.js';
import type { BuildResult } from './build.js';

/** podman needs runc here (crun lacks hybrid cgroups) and limits this machine allows. */
export const PODMAN_RUNTIME = ['--runtime', 'runc'];
const LIMITS = ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024'];

export interface RunOptions {
  mode: 'image' | 'overlay';
  port: number;
  route: string;
  env?: Record<string, string>;
  name?: string;
}

export interface RunningService {
  container: string;
  url: string;
  logs(): Promise<string>;
  stop(): Promise<void>;
}

/** Pure: the podman arguments that run a build (the overlay directory only in overlay mode). */
export function podmanRunArgs(config: Config, build: BuildResult, opts: RunOptions, overlayDir?: string): string[] {
  if (opts.mode === 'overlay' && !overlayDir)
    throw new InputError('overlay mode needs the overlay', [{ path: 'mode', message: 'this build has no overlay zip' }]);
  const args = [
    ...PODMAN_RUNTIME,
    'run',
    '-d',
    '--name',
    opts.name ?? `svcbuild-${build.service}-${opts.port}`,
    '--network',
    'host',
    ...LIMITS,
  ];
  if (config.registry.plainHttp) args.push('--tls-verify=false');
  const env = { ...(opts.env ?? {}), PORT: String(opts.port), CONTEXT_ROOT: opts.route };
  for (const [k, v] of Object.entries(env)) args.push('-e', `${k}=${v}`);
  if (opts.mode === 'image') return [...args, build.image];
  // The base image has no entrypoint of the service: the build's entrypoint runs from /project/app.
  return [
    ...args,
    '--user',
    '1000:1000',
    '--workdir',
    '/project/app',
    '-v',
    `${overlayDir}:/project:ro`,
    '--entrypoint',
    JSON.stringify(build.entrypoint),
    build.base,
  ];
}

export async function runBuild(config: Config, build: BuildResult, opts: RunOptions): Promise<RunningService> {
  let overlayDir: string | undefined;
  if (opts.mode === 'overlay') {
    if (!build.overlay?.path) throw new InputError('this build has no overlay zip', [{ path: 'mode', message: 'use --mode image' }]);
    overlayDir = await mkdtemp(join(tmpdir(), 'svcbuild-run-'));
    await runOk('unzip', ['-q', build.overlay.path, '-d', overlayDir]);
    await runOk('chown', ['-R', '1000:1000', overlayDir]);
  }
  const args = podmanRunArgs(config, build, opts, overlayDir);
  let container: string;
  try {
    container = (await runOk('podman', args)).stdout.trim();
  } catch (e) {
    if (overlayDir) await rm(overlayDir, { recursive: true, force: true });
    throw e;
  }
  return {
    container,
    url: `http://127.0.0.1:${opts.port}${opts.route === '/' ? '/' : `${opts.route}/`}`,
    logs: async () => (await run('podman', [...PODMAN_RUNTIME, 'logs', container])).output,
    stop: async () => {
      await run('podman', [...PODMAN_RUNTIME, 'rm', '-f', '-t', '3', container]);
      if (overlayDir) await rm(overlayDir, { recursive: true, force: true });
    },
  };
}
