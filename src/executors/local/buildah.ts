/**
 * buildah, daemonless: the local executor's image builder. One small module so the rest of
 * the code never assembles buildah command lines itself.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../../config/schema.js';
import { run, runOk, tail } from '../../util/exec.js';
import { BuildError, CancelledError } from '../../errors.js';

/**
 * Pure: the part of buildah's output a user needs when a build fails: the failing step and
 * what its tools said (uv's or npm's own message), without buildah's noise.
 */
export function summarizeBuildFailure(output: string): string {
  const lines = output.split('\n');
  let start = -1;
  for (let i = lines.length - 1; i >= 0; i--) {
    if (/^STEP \d+\/\d+: /.test(lines[i]!)) {
      start = i;
      break;
    }
  }
  if (start < 0) return `the image build failed:\n${tail(output, 30)}`;
  const step = lines[start]!.replace(/^STEP \d+\/\d+: /, '');
  const said = lines
    .slice(start + 1)
    .filter((l) => !/^subprocess exited with status|^Error: building at STEP|^--> /.test(l) && l.trim() !== '');
  const what = /svcbuild-(python\.py adopt|node\.js install)|uv pip install|npm install/.test(step)
    ? 'installing the dependencies failed'
    : `the build step failed: ${step.length > 120 ? step.slice(0, 117) + '...' : step}`;
  return `${what}:\n${said
    .slice(-40)
    .map((l) => `  ${l}`)
    .join('\n')}`;
}

export interface BuildahOptions {
  /** false for plain-HTTP loopback registries. */
  tlsVerify: boolean;
  /** user:password for the registry, if it needs one. */
  creds?: string;
  isolation: 'chroot' | 'oci';
}

export interface BudInput {
  contextDir: string;
  dockerfile: string;
  tag: string;
  buildArgs?: Record<string, string>;
  /** host:container[:ro] bind mounts for RUN steps; never part of a layer. */
  volumes?: string[];
  onLine?: (line: string) => void;
  /** Names the step in errors. */
  step: string;
  signal?: AbortSignal;
}

export class Buildah {
  constructor(private readonly opts: BuildahOptions) {}

  /** buildah for the configured registry: TLS unless plain HTTP, its credentials, the isolation. */
  static forConfig(config: Pick<Config, 'registry' | 'build'>): Buildah {
    const { registry } = config;
    return new Buildah({
      tlsVerify: !registry.plainHttp,
      creds: registry.username ? `${registry.username}:${registry.password}` : undefined,
      isolation: config.build.isolation,
    });
  }

  private common(): string[] {
    const a = [`--tls-verify=${this.opts.tlsVerify}`];
    if (this.opts.creds) a.push('--creds', this.opts.creds);
    return a;
  }

  /** Builds a Dockerfile with layer caching; returns the image id. */
  async bud(input: BudInput): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'svcbuild-bud-'));
    try {
      const iidfile = join(dir, 'iid');
      const args = [
        'bud',
        '--layers',
        `--isolation=${this.opts.isolation}`,
        ...this.common(),
        '--iidfile',
        iidfile,
        '-f',
        input.dockerfile,
        '-t',
        input.tag,
      ];
      for (const [k, v] of Object.entries(input.buildArgs ?? {})) args.push('--build-arg', `${k}=${v}`);
      for (const v of input.volumes ?? []) args.push('-v', v);
      args.push(input.contextDir);
      const res = await run('buildah', args, { onLine: input.onLine, signal: input.signal });
      if (input.signal?.aborted) throw new CancelledError();
      if (res.code !== 0) {
        throw new BuildError(summarizeBuildFailure(res.output), input.step, { output: res.output });
      }
      return (await readFile(iidfile, 'utf8')).trim();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** Pushes a local image to `ref`; returns the manifest digest the registry stored. */
  async push(local: string, ref: string, signal?: AbortSignal): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'svcbuild-push-'));
    try {
      const digestfile = join(dir, 'digest');
      await runOk('buildah', ['push', ...this.common(), '--digestfile', digestfile, local, `docker://${ref}`], { signal });
      return (await readFile(digestfile, 'utf8')).trim();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** Imports a root filesystem directory as a single-layer image tagged `tag`. */
  async importRootfs(rootfs: string, tag: string, config: { env: string[]; cmd: string[] }): Promise<string> {
    const ctr = (await runOk('buildah', ['from', '--quiet', 'scratch'])).stdout.trim();
    try {
      const mnt = (await runOk('buildah', ['mount', ctr])).stdout.trim();
      await runOk('sh', ['-c', 'tar -C "$1" -cf - . | tar -C "$2" -xpf -', 'sh', rootfs, mnt]);
      await runOk('buildah', ['umount', ctr]);
      const cfg = ['config'];
      for (const e of config.env) cfg.push('--env', e);
      cfg.push('--cmd', JSON.stringify(config.cmd), ctr);
      await runOk('buildah', cfg);
      return (await runOk('buildah', ['commit', '--quiet', ctr, tag])).stdout.trim();
    } finally {
      await run('buildah', ['rm', ctr]);
    }
  }

  /** True when local storage holds an image of that name. */
  async hasImage(ref: string): Promise<boolean> {
    return (await run('buildah', ['inspect', '--type', 'image', ref])).code === 0;
  }

  /** Removes a local image; missing images are not an error. */
  async removeImage(ref: string): Promise<void> {
    await run('buildah', ['rmi', ref]);
  }
}
