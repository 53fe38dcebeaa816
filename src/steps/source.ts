/**
 * Pipeline step `source`: fetch the project (an uploaded archive pushed as an OCI artifact, or
 * a shallow git fetch), check it the way a local build does (archive extraction rules,
 * staging, provider detection), and push it as a deterministic tar.gz artifact. The later
 * steps only ever see that artifact, by digest.
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, realpath, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join, posix, sep } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Config, Kind } from '../config/schema.js';
import { InputError, NotFoundError, UpstreamError } from '../errors.js';
import { checkGitUrl } from '../executors/local/executor.js';
import { selectProvider } from '../providers/index.js';
import { stageProject } from '../providers/project.js';
import type { RegistryClient } from '../registry/client.js';
import type { ImageRef } from '../registry/ref.js';
import { MEDIA_TYPES, isIndexMediaType, type ImageManifest } from '../registry/types.js';
import { DEFAULT_ARCHIVE_LIMITS, extractArchive } from '../source/archive.js';
import { run } from '../util/exec.js';
import { packProject, readProjectConfig } from './project.js';

export const SOURCE_ARTIFACT_TYPE = 'application/vnd.svcbuild.source.v1';
export const SOURCE_MEDIA_TYPE = MEDIA_TYPES.ociLayerGzip;

export type SourceSpec =
  { kind: 'archive'; archive: ImageRef & { digest: string } } | { kind: 'git'; url: string; ref: string; subdir: string };

export interface SourceResult {
  /** Digest of the pushed source artifact's manifest. */
  digest: string;
  /** The project kind detected (or named by svcbuild.yaml). */
  kind: Kind;
  files: number;
  bytes: number;
  /** The git commit fetched, for a git source. */
  commit?: string;
}

/** A git ref we pass to `git fetch`: a branch, tag or commit, never an option or a range. */
export const GIT_REF_RE = /^[A-Za-z0-9_][A-Za-z0-9._/-]{0,254}$/;

/** Pure: the problems of a git ref and subdirectory (paths named by the step's flags). */
export function checkGitSpec(ref: string, subdir: string): Array<{ flag: string; message: string }> {
  const out: Array<{ flag: string; message: string }> = [];
  if (!GIT_REF_RE.test(ref) || ref.includes('..') || ref.endsWith('.lock') || ref.endsWith('/') || ref.includes('//')) {
    out.push({ flag: 'git-ref', message: `"${ref}" is not a branch, tag or commit name (letters, digits, . _ / -; no "..")` });
  }
  if (subdir !== '') {
    const norm = posix.normalize(subdir);
    if (isAbsolute(subdir) || subdir.includes('\\') || norm === '..' || norm.startsWith('../') || /[\0\r\n]/.test(subdir)) {
      out.push({ flag: 'git-subdir', message: `"${subdir}" must be a relative path inside the repository` });
    }
  }
  return out;
}

/** Downloads the single layer of an archive artifact into `file`, refusing oversized ones. */
async function downloadArchive(client: RegistryClient, ref: ImageRef & { digest: string }, file: string): Promise<void> {
  let manifest;
  try {
    manifest = await client.getManifest(ref.repo, ref.digest);
  } catch (e) {
    if (e instanceof NotFoundError)
      throw new InputError('the source archive does not exist', [{ path: '--archive-ref', message: e.message }]);
    throw e;
  }
  if (isIndexMediaType(manifest.mediaType)) {
    throw new InputError('the source archive is not an artifact', [
      { path: '--archive-ref', message: 'names an image index, not an artifact manifest with one layer' },
    ]);
  }
  const layers = (manifest.json as ImageManifest).layers ?? [];
  if (layers.length !== 1) {
    throw new InputError('the source archive is not an archive artifact', [
      { path: '--archive-ref', message: `must hold exactly one layer (the archive), it holds ${layers.length}` },
    ]);
  }
  const layer = layers[0]!;
  const max = DEFAULT_ARCHIVE_LIMITS.maxArchiveBytes;
  if (layer.size > max) {
    throw new InputError('the uploaded archive was refused', [
      { path: 'source', message: `the archive is ${layer.size} bytes, over the limit of ${max} bytes` },
    ]);
  }
  let seen = 0;
  const limit = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length;
      cb(
        seen > max ? new UpstreamError(`registry sent more than the ${layer.size} bytes the manifest declares for ${layer.digest}`) : null,
        chunk,
      );
    },
  });
  await pipeline(await client.fetchBlob(ref.repo, layer.digest), limit, createWriteStream(file, { mode: 0o600 }));
}

const GIT_ENV = {
  GIT_TERMINAL_PROMPT: '0',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_PROTOCOL_FROM_USER: '0',
  GIT_ALLOW_PROTOCOL: 'https:http:git',
};

/** Pure: is a failed git fetch the network's fault (retry) rather than the request's? */
export function gitFailureIsUpstream(output: string): boolean {
  return /Could not resolve host|Connection refused|Connection timed out|Operation timed out|unable to access .*(Failed to connect|SSL)|early EOF|remote end hung up unexpectedly|HTTP 5\d\d|returned error: 5\d\d/i.test(
    output,
  );
}

/** Shallow-fetches `ref` of `url` into `dest` (a new directory); returns the commit. */
async function fetchGit(url: string, ref: string, dest: string): Promise<string> {
  const env = { ...process.env, ...GIT_ENV };
  const git = (args: string[], timeoutMs = 60_000) => run('git', args, { env, timeoutMs });
  const init = await git(['init', '--quiet', '--template=', dest]);
  if (init.code !== 0) throw new UpstreamError(`git init failed: ${init.output.trim()}`);
  // fetch takes branches, tags and (protocol v2) commit ids alike; `--` ends the options.
  const fetched = await git(
    ['-C', dest, '-c', 'core.hooksPath=/dev/null', 'fetch', '--quiet', '--depth', '1', '--no-tags', '--', url, ref],
    300_000,
  );
  if (fetched.code !== 0) {
    const said = fetched.output.trim().split('\n').slice(-5).join(' ');
    if (gitFailureIsUpstream(fetched.output)) throw new UpstreamError(`cannot fetch ${url} at ${ref}: ${said}`);
    throw new InputError(`cannot fetch ${url} at ${ref}`, [{ path: '--git-ref', message: said || 'git fetch failed' }]);
  }
  const co = await git([
    '-C',
    dest,
    '-c',
    'core.hooksPath=/dev/null',
    '-c',
    'advice.detachedHead=false',
    'checkout',
    '--quiet',
    '--detach',
    'FETCH_HEAD',
  ]);
  if (co.code !== 0) throw new InputError(`cannot check out ${ref} of ${url}`, [{ path: '--git-ref', message: co.output.trim() }]);
  const head = await git(['-C', dest, 'rev-parse', 'HEAD']);
  return head.stdout.trim();
}

export interface RunSourceOptions {
  config: Config;
  client: RegistryClient;
  source: SourceSpec;
  /** Where the artifact is pushed: a reference with a tag. */
  push: ImageRef & { tag: string };
}

/** Runs the source step; throws InputError (2) for a bad project, UpstreamError (6) for the registry or git server. */
export async function runSourceStep(opts: RunSourceOptions): Promise<SourceResult> {
  const { config, client, source, push } = opts;
  const work = await mkdtemp(join(tmpdir(), 'svcbuild-source-'));
  try {
    let projectDir: string;
    let commit: string | undefined;
    const annotations: Record<string, string> = {};
    if (source.kind === 'archive') {
      const file = join(work, 'upload');
      await downloadArchive(client, source.archive, file);
      projectDir = join(work, 'extracted');
      await extractArchive(file, projectDir);
      annotations['svcbuild.io/archive'] = `${source.archive.host}/${source.archive.repo}@${source.archive.digest}`;
    } else {
      checkGitUrl(source.url);
      const clone = join(work, 'clone');
      commit = await fetchGit(source.url, source.ref, clone);
      projectDir = clone;
      if (source.subdir) {
        const dir = join(clone, source.subdir);
        let real: string;
        try {
          real = await realpath(dir);
          if (!(await stat(real)).isDirectory()) throw new Error('not a directory');
        } catch {
          throw new InputError(`the repository has no directory ${source.subdir}`, [
            { path: '--git-subdir', message: `no such directory at ${source.ref}` },
          ]);
        }
        const root = await realpath(clone);
        if (real !== root && !real.startsWith(root + sep)) {
          throw new InputError('bad subdirectory', [{ path: '--git-subdir', message: 'leads outside the repository (through a link)' }]);
        }
        projectDir = real;
      }
      annotations['org.opencontainers.image.source'] = source.url;
      annotations['org.opencontainers.image.revision'] = commit;
    }

    // The same checks as a local build: staging refuses links out, devices, too many files.
    const project = await stageProject(projectDir, join(work, 'staged'));
    if (project.files.length === 0) {
      throw new InputError('the project is empty', [
        { path: 'source', message: 'no files (after leaving out .git, node_modules, .venv and caches)' },
      ]);
    }
    const pcfg = await readProjectConfig(project);
    const provider = selectProvider(project, pcfg.kind, config.enabledKinds, 'svcbuild.yaml.kind');
    annotations['svcbuild.io/kind'] = provider.kind;

    const tgz = await packProject(project.root);
    if (tgz.length > DEFAULT_ARCHIVE_LIMITS.maxArchiveBytes) {
      throw new InputError('the project is too large', [
        { path: 'source', message: `packed it is ${tgz.length} bytes, over ${DEFAULT_ARCHIVE_LIMITS.maxArchiveBytes}` },
      ]);
    }
    const desc = await client.pushArtifact({
      repo: push.repo,
      artifactType: SOURCE_ARTIFACT_TYPE,
      files: [{ mediaType: SOURCE_MEDIA_TYPE, bytes: tgz, annotations: { 'org.opencontainers.image.title': 'source.tar.gz' } }],
      annotations,
      tag: push.tag,
    });
    const out: SourceResult = { digest: desc.digest, kind: provider.kind, files: project.files.length, bytes: tgz.length };
    if (commit) out.commit = commit;
    return out;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
