/**
 * The I/O shell of rebase: reads the three images from the registry, checks that the new base
 * still satisfies the service, and pushes the re-based image (blobs mounted, never rebuilt).
 */
import { BuildError } from '../errors.js';
import { readLayer } from '../overlay/tar.js';
import type { RegistryClient } from '../registry/client.js';
import { sha256Digest } from '../registry/client.js';
import { parseImageRef } from '../registry/ref.js';
import { planRebase, rebaseBlockers, type BaseFacts, type ImageParts } from './plan.js';

const PREINSTALLED_FILES = ['home/user/constraints.txt', 'home/user/package.json'];
const LANGUAGE_ENV = ['SVCBUILD_PYTHON_VERSION', 'SVCBUILD_NODE_VERSION'];

async function load(client: RegistryClient, ref: string): Promise<ImageParts & { repo: string; digest: string }> {
  const r = parseImageRef(ref, client.host);
  const img = await client.getImage(r.repo, r.digest ?? r.tag ?? 'latest');
  return { manifest: img.manifest.json, config: img.config as ImageParts['config'], repo: r.repo, digest: img.manifest.digest };
}

/** The language version and preinstalled set of a base image, read from its top layers. */
export async function readBaseFacts(client: RegistryClient, repo: string, img: ImageParts): Promise<BaseFacts> {
  const env = ((img.config.config as { Env?: string[] } | undefined)?.Env ?? []).map((e) => e.split('='));
  const lang = env.find(([k]) => LANGUAGE_ENV.includes(k!));
  const facts: BaseFacts = { languageVersion: lang ? lang.slice(1).join('=').split('.').slice(0, 2).join('.') : undefined };
  const want = new Set(PREINSTALLED_FILES);
  for (let i = img.manifest.layers.length - 1; i >= 0 && want.size; i--) {
    const entries = await readLayer(await client.fetchBlob(repo, img.manifest.layers[i]!.digest), {
      keep: (p) => want.has(p),
      loadContent: (p) => want.has(p),
    });
    for (const e of entries) {
      if (want.has(e.path) && e.content) {
        facts.preinstalled = Buffer.from(e.content).toString('utf8');
        want.clear();
      }
    }
  }
  return facts;
}

async function copyBlob(client: RegistryClient, from: string, to: string, digest: string): Promise<void> {
  if (await client.blobExists(to, digest)) return;
  const stream = await client.fetchBlob(from, digest);
  try {
    await client.pushBlob(to, stream, { digest, mountFrom: from });
  } finally {
    stream.destroy();
  }
}

export interface RebaseResult {
  image: string;
  digest: string;
  base: string;
  /** Layers above the base, reused byte for byte. */
  reusedLayers: number;
}

/** Re-bases `image` (built on `oldBase`) onto `newBase` and pushes it as `repo:tag`. */
export async function rebaseImage(
  client: RegistryClient,
  opts: { image: string; oldBase: string; newBase: string; tag: string },
): Promise<RebaseResult> {
  const [image, oldBase, newBase] = await Promise.all([load(client, opts.image), load(client, opts.oldBase), load(client, opts.newBase)]);
  const [oldFacts, newFacts] = await Promise.all([
    readBaseFacts(client, oldBase.repo, oldBase),
    readBaseFacts(client, newBase.repo, newBase),
  ]);
  const blockers = rebaseBlockers(oldFacts, newFacts);
  if (blockers.length) {
    throw new BuildError(
      `the new base cannot carry this service unchanged; rebuild it instead:\n${blockers.map((b) => `  - ${b}`).join('\n')}`,
      'rebase',
      { blockers },
    );
  }
  const plan = planRebase(image, oldBase, newBase);
  for (const l of newBase.manifest.layers) await copyBlob(client, newBase.repo, image.repo, l.digest);
  const configBytes = Buffer.from(JSON.stringify(plan.config));
  const cfg = await client.pushBlob(image.repo, configBytes);
  const manifest = {
    ...plan.manifest,
    config: { mediaType: image.manifest.config.mediaType, digest: cfg.digest, size: configBytes.length },
  };
  const bytes = Buffer.from(JSON.stringify(manifest));
  const mediaType = image.manifest.mediaType ?? 'application/vnd.oci.image.manifest.v1+json';
  const digest = await client.putManifest(image.repo, opts.tag, bytes, mediaType);
  if (digest !== sha256Digest(bytes)) throw new BuildError(`the registry stored the manifest as ${digest}`, 'rebase');
  return {
    image: `${client.host}/${image.repo}@${digest}`,
    digest,
    base: `${client.host}/${newBase.repo}@${newBase.digest}`,
    reusedLayers: countUpper(image, oldBase),
  };
}

function countUpper(image: ImageParts, oldBase: ImageParts): number {
  return image.manifest.layers.length - oldBase.manifest.layers.length;
}
