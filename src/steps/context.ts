/**
 * Pipeline step `context` (the build pod's init container): pulls the source artifact,
 * extracts it safely, asks the provider for its plan and writes the build context: the project,
 * the Dockerfile (FROM base@digest) and a .dockerignore keeping the Dockerfile out of `COPY .`.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Config, Kind } from '../config/schema.js';
import { InputError, NotFoundError } from '../errors.js';
import { renderDockerfile } from '../providers/dockerfile.js';
import { selectProvider } from '../providers/index.js';
import { stageProject } from '../providers/project.js';
import type { BaseInfo, BuildPlan } from '../providers/provider.js';
import type { RegistryClient } from '../registry/client.js';
import type { ImageRef } from '../registry/ref.js';
import { isIndexMediaType, type ImageManifest } from '../registry/types.js';
import { DEFAULT_ARCHIVE_LIMITS, extractArchive } from '../source/archive.js';
import { readProjectConfig } from './project.js';
import { SOURCE_ARTIFACT_TYPE, SOURCE_MEDIA_TYPE } from './source.js';

/** Files the context step writes next to the project; a project file of that name is refused. */
export const GENERATED = ['Dockerfile'] as const;

/** Lines that keep the generated files out of `COPY . /project/app/`. */
export const IGNORE_LINES = ['Dockerfile', '.dockerignore', '.containerignore'];

/** Pure: the ignore file of the context: the project's own (if any) plus ours. */
export function ignoreFile(projectOwn: string | undefined): string {
  const head = projectOwn === undefined ? '' : projectOwn.endsWith('\n') || projectOwn === '' ? projectOwn : `${projectOwn}\n`;
  return `${head}# Written by svcbuild: the generated build files are not part of the project.\n${IGNORE_LINES.join('\n')}\n`;
}

/**
 * Pure: the base image as the providers see it. A base of the catalog (`<namespace>/base/<name>`)
 * brings its kind and language version; any other base is taken for `language` without one.
 */
export function baseInfoFor(config: Config, base: ImageRef & { digest: string }, language: Kind): BaseInfo {
  const prefix = `${config.registry.namespace}/base/`;
  const name = base.repo.startsWith(prefix) ? base.repo.slice(prefix.length) : base.repo.split('/').pop()!;
  const spec = base.repo.startsWith(prefix) ? config.baseImages[name] : undefined;
  const info: BaseInfo = { name, kind: spec?.kind ?? language, ref: `${base.host}/${base.repo}@${base.digest}` };
  if (spec?.languageVersion) info.languageVersion = spec.languageVersion;
  return info;
}

export interface RunContextOptions {
  config: Config;
  client: RegistryClient;
  source: ImageRef & { digest: string };
  language: string;
  base: ImageRef & { digest: string };
  /** The context directory: empty or not existing yet. */
  out: string;
}

export interface ContextResult {
  kind: Kind;
  base: string;
  port: number;
  plan: BuildPlan;
  files: number;
  dockerfile: string;
}

async function fetchSourceArchive(client: RegistryClient, source: ImageRef & { digest: string }, file: string): Promise<void> {
  let m;
  try {
    m = await client.getManifest(source.repo, source.digest);
  } catch (e) {
    if (e instanceof NotFoundError) throw new InputError('the source artifact does not exist', [{ path: '--source', message: e.message }]);
    throw e;
  }
  const json = m.json as ImageManifest;
  const layers = isIndexMediaType(m.mediaType) ? [] : (json.layers ?? []);
  if (json.artifactType !== SOURCE_ARTIFACT_TYPE || layers.length !== 1 || layers[0]!.mediaType !== SOURCE_MEDIA_TYPE) {
    throw new InputError('not a source artifact', [
      {
        path: '--source',
        message: `must be an artifact of type ${SOURCE_ARTIFACT_TYPE} with one ${SOURCE_MEDIA_TYPE} layer, as \`svcbuild source\` pushes`,
      },
    ]);
  }
  if (layers[0]!.size > DEFAULT_ARCHIVE_LIMITS.maxArchiveBytes) {
    throw new InputError('the source artifact is too large', [{ path: '--source', message: `${layers[0]!.size} bytes` }]);
  }
  await pipeline(await client.fetchBlob(source.repo, layers[0]!.digest), createWriteStream(file, { mode: 0o600 }));
}

/** Runs the context step. */
export async function runContextStep(opts: RunContextOptions): Promise<ContextResult> {
  const { config, client, source, base, out } = opts;
  // The directory is the pod's emptyDir: anything in it would end up in the image.
  let existing: string[] = [];
  try {
    existing = await readdir(out);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  if (existing.length) {
    throw new InputError('the context directory is not empty', [
      { path: '--out', message: `${out} holds ${existing.slice(0, 5).join(', ')}${existing.length > 5 ? ', ...' : ''}` },
    ]);
  }
  // The base must exist before anything is planned on it.
  try {
    await client.getManifest(base.repo, base.digest);
  } catch (e) {
    if (e instanceof NotFoundError) throw new InputError('the base image does not exist', [{ path: '--base', message: e.message }]);
    throw e;
  }
  const work = await mkdtemp(join(tmpdir(), 'svcbuild-context-'));
  try {
    const file = join(work, 'source.tar.gz');
    await fetchSourceArchive(client, source, file);
    const extracted = join(work, 'extracted');
    await extractArchive(file, extracted);
    await mkdir(out, { recursive: true });
    const project = await stageProject(extracted, out);
    for (const g of GENERATED) {
      if (project.has(g)) {
        throw new InputError(`the project has its own ${g}`, [
          { path: `source/${g}`, message: `svcbuild writes the build's ${g}; rename or remove the project's` },
        ]);
      }
    }
    const pcfg = await readProjectConfig(project);
    const provider = selectProvider(project, opts.language, config.enabledKinds, '--language');
    const info = baseInfoFor(config, base, provider.kind);
    if (info.kind !== provider.kind) {
      throw new InputError('the base image does not fit the project', [
        { path: '--base', message: `base image "${info.name}" is for ${info.kind} projects, not ${provider.kind}` },
      ]);
    }
    const plan = await provider.plan(project, info, pcfg);
    const port = pcfg.port ?? config.defaults.port;
    const dockerfile = renderDockerfile(plan, info, { port });
    await writeFile(join(out, 'Dockerfile'), dockerfile, { mode: 0o644 });
    // buildah prefers .containerignore, Kaniko reads .dockerignore: both keep the project's rules.
    await writeFile(
      join(out, '.dockerignore'),
      ignoreFile(project.has('.dockerignore') ? await project.readText('.dockerignore') : undefined),
    );
    if (project.has('.containerignore'))
      await writeFile(join(out, '.containerignore'), ignoreFile(await project.readText('.containerignore')));
    return { kind: provider.kind, base: info.ref, port, plan, files: project.files.length, dockerfile };
  } catch (e) {
    // A retried init container must find the directory empty again.
    for (const name of await readdir(out).catch(() => [] as string[])) await rm(join(out, name), { recursive: true, force: true });
    throw e;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
