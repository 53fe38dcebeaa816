/**
 * Registry housekeeping of the pipeline: promote a build (tag its digest) and delete an
 * unpromoted one. Distribution deletes manifests by digest only, and with them every tag
 * pointing there: deleting `repo:build-<id>` that way would also delete the image's promoted
 * tags. So a tag is removed alone: it is moved to a unique, empty "tombstone" manifest, which
 * is then deleted by its digest. The image itself is deleted only when no tag is left on it.
 */
import { randomBytes } from 'node:crypto';
import { NotFoundError } from '../errors.js';
import { EMPTY_JSON_DIGEST, sha256Digest, type RegistryClient } from '../registry/client.js';
import type { ImageRef } from '../registry/ref.js';
import { MEDIA_TYPES, type ImageManifest } from '../registry/types.js';

export const TOMBSTONE_ARTIFACT_TYPE = 'application/vnd.svcbuild.tombstone.v1';

export type DeleteOutcome =
  /** The tag was removed; `digest` is what it pointed to; `imageDeleted` when no other tag kept it. */
  { result: 'deleted'; digest: string; imageDeleted: boolean; keptBy: string[] } | { result: 'missing' };

/** Pure: the tombstone manifest that briefly takes over `tag` (unique, so deleting it deletes nothing else). */
export function tombstoneManifest(repo: string, tag: string, nonce: string): Buffer {
  const m: ImageManifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociManifest,
    artifactType: TOMBSTONE_ARTIFACT_TYPE,
    config: { mediaType: MEDIA_TYPES.ociEmpty, digest: EMPTY_JSON_DIGEST, size: 2, data: 'e30=' },
    layers: [],
    annotations: { 'svcbuild.io/tombstone': `${repo}:${tag}`, 'svcbuild.io/nonce': nonce },
  };
  return Buffer.from(JSON.stringify(m));
}

/** The tags of `repo` other than `except` that point at `digest`. */
async function tagsOf(client: RegistryClient, repo: string, digest: string, except: string): Promise<string[]> {
  const out: string[] = [];
  for (const t of await client.listTags(repo)) {
    if (t === except) continue;
    try {
      if ((await client.getManifest(repo, t)).digest === digest) out.push(t);
    } catch (e) {
      if (!(e instanceof NotFoundError)) throw e;
    }
  }
  return out;
}

/**
 * Deletes `ref`: by digest, the manifest (and so every tag on it); by tag, that tag, and the
 * manifest too when no other tag points at it. A missing reference is `{result: 'missing'}`
 * (the caller decides whether that is an error).
 */
export async function deleteReference(client: RegistryClient, ref: ImageRef): Promise<DeleteOutcome> {
  if (ref.digest) {
    try {
      await client.deleteManifest(ref.repo, ref.digest);
    } catch (e) {
      if (e instanceof NotFoundError) return { result: 'missing' };
      throw e;
    }
    return { result: 'deleted', digest: ref.digest, imageDeleted: true, keptBy: [] };
  }
  const tag = ref.tag as string;
  let digest: string;
  try {
    digest = (await client.getManifest(ref.repo, tag)).digest;
  } catch (e) {
    if (e instanceof NotFoundError) return { result: 'missing' };
    throw e;
  }
  const keptBy = await tagsOf(client, ref.repo, digest, tag);
  if (keptBy.length === 0) {
    // Nothing else names the image: delete it, and its last tag with it.
    try {
      await client.deleteManifest(ref.repo, digest);
    } catch (e) {
      if (!(e instanceof NotFoundError)) throw e;
    }
    return { result: 'deleted', digest, imageDeleted: true, keptBy };
  }
  await client.pushBlob(ref.repo, Buffer.from('{}'));
  const tomb = tombstoneManifest(ref.repo, tag, randomBytes(8).toString('hex'));
  await client.putManifest(ref.repo, tag, tomb, MEDIA_TYPES.ociManifest);
  await client.deleteManifest(ref.repo, sha256Digest(tomb));
  return { result: 'deleted', digest, imageDeleted: false, keptBy };
}

/** Tags the manifest `ref` (by digest) as `tag` in the same repository; returns the digest. */
export async function promote(client: RegistryClient, ref: ImageRef & { digest: string }, tag: string): Promise<string> {
  return client.tagManifest(ref.repo, ref.digest, tag);
}
