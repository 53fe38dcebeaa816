/**
 * The overlay step's I/O shell: reads the image's layers above its base from the registry,
 * asks the pure planner (./plan.ts) what the overlay is, writes the deterministic zip
 * (./zip.ts) and pushes it as an OCI artifact referring to the image.
 *
 * Cost: the layers above the base are streamed once (file bytes are kept only under
 * /project). The base's layers are streamed only when the upper layers touch paths outside
 * /project (parent directories, whiteouts) or an env manifest must be read from the base:
 * then every base layer is decompressed once and its tar headers read, but only the files
 * at the paths needed are hashed and nothing is written to disk.
 */
import { BuildError, InputError, InternalError } from '../errors.js';
import type { RegistryClient } from '../registry/client.js';
import { parseImageRef, refOf, type ImageRef } from '../registry/ref.js';
import type { Descriptor, Platform } from '../registry/types.js';
import { sha256Digest } from '../registry/client.js';
import {
  applyLayer,
  countBaseLayers,
  formatViolations,
  neededBasePaths,
  normalizeLayerPath,
  parseEnvManifest,
  planOverlay,
  queryWants,
  PROJECT,
  type BaseEntry,
  type EnvManifest,
  type LayerEntry,
  type OverlayEntry,
  type Violation,
} from './plan.js';
import { readLayer } from './tar.js';
import { encodeZip } from './zip.js';

export const OVERLAY_ARTIFACT_TYPE = 'application/vnd.svcbuild.overlay.v1';
export const OVERLAY_MEDIA_TYPE = 'application/zip';

/** A base env manifest: its text, or the absolute path of the file in the base image. */
/** An env manifest given as text, or as a file of the base image (`optional`: skip when absent). */
export type EnvManifestSource = { root: string; text: string } | { root: string; path: string; optional?: boolean };

export interface ComputeOverlayOptions {
  client: RegistryClient;
  /** The base image reference (`host/repo:tag` or `@digest`); its host must be the client's. */
  base: string | ImageRef;
  image: string | ImageRef;
  envManifests?: EnvManifestSource[];
  platform?: Platform;
  /** Throw a BuildError listing every violation (default true). */
  failOnViolations?: boolean;
}

export interface OverlayResult {
  entries: OverlayEntry[];
  violations: Violation[];
  zip: Buffer;
  /** sha256 of the zip. */
  digest: string;
  bytes: number;
  /** The image manifest the overlay was computed from (the artifact's subject). */
  image: { repo: string } & Pick<Descriptor, 'digest' | 'mediaType' | 'size'>;
  /** Layers read: above the base, and of the base (0 when the base was not needed). */
  layersRead: { upper: number; base: number };
}

function resolveRef(ref: string | ImageRef, client: RegistryClient, field: string): ImageRef {
  const r = typeof ref === 'string' ? parseImageRef(ref, client.host) : ref;
  if (r.host !== client.host) {
    throw new InputError(`${field} ${r.host}/${r.repo} is not on the registry ${client.host}`, [
      { path: field, message: `host ${r.host} is not ${client.host}` },
    ]);
  }
  return r;
}

/**
 * Computes the overlay of `image` over `base` from the registry, without running either.
 * Throws a BuildError (step `overlay`) listing every violating path, unless
 * `failOnViolations` is false.
 */
export async function computeOverlay(opts: ComputeOverlayOptions): Promise<OverlayResult> {
  const { client } = opts;
  const baseRef = resolveRef(opts.base, client, 'base');
  const imageRef = resolveRef(opts.image, client, 'image');
  const [base, image] = await Promise.all([
    client.getImage(baseRef.repo, refOf(baseRef), opts.platform),
    client.getImage(imageRef.repo, refOf(imageRef), opts.platform),
  ]);
  const n = countBaseLayers(base.config, image.config);
  const imageLayers = image.manifest.json.layers;
  if (imageLayers.length !== image.config.rootfs.diff_ids.length) {
    throw new BuildError(
      `image ${imageRef.repo}@${image.manifest.digest} has ${imageLayers.length} layers but ${image.config.rootfs.diff_ids.length} diff_ids`,
      'overlay',
    );
  }

  const upper: LayerEntry[][] = [];
  for (const desc of imageLayers.slice(n)) {
    const inProject = (p: string) => p.startsWith(PROJECT + '/');
    upper.push(
      await readLayer(await client.fetchBlob(imageRef.repo, desc.digest), {
        loadContent: inProject,
        hash: (p) => !inProject(p),
        label: desc.digest,
      }),
    );
  }

  const query = neededBasePaths(upper);
  const manifestFiles = new Map<string, string>(); // normalized path -> root
  for (const m of opts.envManifests ?? []) {
    if ('path' in m) {
      const p = normalizeLayerPath(m.path);
      if (!p) throw new InputError(`env manifest path ${m.path} is not a file path`, [{ path: 'envManifests', message: m.path }]);
      manifestFiles.set(p, m.root);
      query.paths.add(p);
    }
  }
  const baseState = new Map<string, BaseEntry & { content?: Uint8Array }>();
  let baseLayersRead = 0;
  if (query.paths.size || query.prefixes.size) {
    const wants = (p: string) => queryWants(query, p);
    const keep = (p: string) => wants(p) || p.slice(p.lastIndexOf('/') + 1).startsWith('.wh.');
    // Read the base top-down and stop once every wanted path is settled by a layer read so
    // far: lower layers cannot change what a higher layer says about a path (only prefixes,
    // i.e. whole directories, and hard links need the layers below). A base whose top layer
    // holds the env (every curated base) is then read one small layer deep, not down to the OS.
    const collected: Awaited<ReturnType<typeof readLayer>>[] = [];
    const settled = new Set<string>();
    const layers = base.manifest.json.layers;
    for (let i = layers.length - 1; i >= 0; i--) {
      const desc = layers[i]!;
      const entries = await readLayer(await client.fetchBlob(baseRef.repo, desc.digest), {
        keep,
        hash: wants,
        loadContent: (p) => manifestFiles.has(p),
        label: desc.digest,
      });
      collected.unshift(entries);
      baseLayersRead++;
      for (const e of entries) {
        const name = e.path.slice(e.path.lastIndexOf('/') + 1);
        if (name.startsWith('.wh.')) {
          if (name !== '.wh..wh..opq') settled.add(e.path.slice(0, e.path.length - name.length) + name.slice(4));
        } else if (e.type !== 'hardlink') settled.add(e.path);
      }
      if (query.prefixes.size === 0 && [...query.paths].every((p) => settled.has(p))) break;
    }
    for (const entries of collected) applyLayer(baseState, entries, wants);
  }

  const envManifests: EnvManifest[] = [];
  for (const m of opts.envManifests ?? []) {
    if ('text' in m) envManifests.push(parseEnvManifest(m.text, m.root));
    else {
      const f = baseState.get(normalizeLayerPath(m.path) as string);
      if ((!f || f.type !== 'file' || !f.content) && m.optional) continue;
      if (!f || f.type !== 'file' || !f.content) {
        throw new InputError(`the base image has no env manifest file ${m.path}`, [
          { path: 'envManifests', message: `${m.path} not found in the base image` },
        ]);
      }
      envManifests.push(parseEnvManifest(Buffer.from(f.content).toString('utf8'), m.root));
    }
  }
  for (const p of manifestFiles.keys()) {
    // The manifest file was only read for its text; it stays part of the base comparison.
    const f = baseState.get(p);
    if (f) delete f.content;
  }

  const plan = planOverlay({ layers: upper, base: baseState, envManifests });
  if (plan.violations.length && (opts.failOnViolations ?? true)) {
    const paths = new Set(plan.violations.map((v) => v.path));
    throw new BuildError(
      `image ${imageRef.repo}@${image.manifest.digest} changes ${paths.size} path(s) outside /project or that an overlay cannot carry:\n${formatViolations(plan.violations)}`,
      'overlay',
      { violations: plan.violations },
    );
  }
  const zip = encodeZip(plan.entries);
  return {
    entries: plan.entries,
    violations: plan.violations,
    zip,
    digest: sha256Digest(zip),
    bytes: zip.length,
    image: { repo: imageRef.repo, digest: image.manifest.digest, mediaType: image.manifest.mediaType, size: image.manifest.bytes.length },
    layersRead: { upper: upper.length, base: baseLayersRead },
  };
}

/**
 * Pushes an overlay zip as an OCI artifact (`application/vnd.svcbuild.overlay.v1`, one
 * `application/zip` layer) whose subject is the image manifest; returns the artifact digest.
 */
export async function pushOverlay(
  client: RegistryClient,
  repo: string,
  imageDigest: string,
  zip: Uint8Array,
  annotations: Record<string, string> = {},
): Promise<string> {
  const subject = await client.getManifest(repo, imageDigest);
  if (subject.digest !== imageDigest) throw new InternalError(`manifest ${imageDigest} came back as ${subject.digest}`);
  const desc = await client.pushArtifact({
    repo,
    artifactType: OVERLAY_ARTIFACT_TYPE,
    files: [{ mediaType: OVERLAY_MEDIA_TYPE, bytes: zip, annotations: { 'org.opencontainers.image.title': 'overlay.zip' } }],
    subject: { digest: subject.digest, mediaType: subject.mediaType, size: subject.bytes.length },
    annotations,
  });
  return desc.digest;
}

export { planOverlay, encodeZip };
export type { OverlayEntry, Violation };
