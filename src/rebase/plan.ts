/**
 * Pure: re-basing a built image onto a new base image without installing anything. The
 * layers above the old base (the project's files under /project, which the overlay step
 * verified) are kept byte for byte; the base layers, the config's diff_ids, history and the
 * environment the base contributes come from the new base.
 */
import { BuildError } from '../errors.js';
import { countBaseLayers } from '../overlay/plan.js';
import type { Descriptor, ImageConfig, ImageManifest } from '../registry/types.js';

export interface ImageParts {
  manifest: ImageManifest;
  config: ImageConfig & Record<string, unknown>;
}

/** What a base image promises the services built on it. */
export interface BaseFacts {
  /** Python X.Y or Node major the base provides, if any. */
  languageVersion?: string;
  /** The preinstalled set as a text (constraints.txt, or the node base's package.json). */
  preinstalled?: string;
}

const OCI_TO_DOCKER: Record<string, string> = {
  'application/vnd.oci.image.layer.v1.tar+gzip': 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  'application/vnd.oci.image.layer.v1.tar': 'application/vnd.docker.image.rootfs.diff.tar',
};
const DOCKER_TO_OCI = Object.fromEntries(Object.entries(OCI_TO_DOCKER).map(([a, b]) => [b, a]));

/** Why the new base cannot carry the service unchanged; empty when it can. */
export function rebaseBlockers(oldBase: BaseFacts, newBase: BaseFacts): string[] {
  const out: string[] = [];
  if (oldBase.languageVersion !== newBase.languageVersion) {
    out.push(`the language version changes from ${oldBase.languageVersion ?? 'none'} to ${newBase.languageVersion ?? 'none'}`);
  }
  const a = parsePreinstalled(oldBase.preinstalled ?? '');
  const b = parsePreinstalled(newBase.preinstalled ?? '');
  for (const [name, v] of a) {
    if (!b.has(name)) out.push(`preinstalled ${name} ${v} is gone from the new base`);
    else if (b.get(name) !== v) out.push(`preinstalled ${name} changes from ${v} to ${b.get(name)}`);
  }
  for (const [name, v] of b) if (!a.has(name)) out.push(`the new base preinstalls ${name} ${v}, which the service may also carry`);
  return out;
}

/** name -> version from a constraints file (`name==version`) or a package.json's dependencies. */
export function parsePreinstalled(text: string): Map<string, string> {
  const m = new Map<string, string>();
  const t = text.trim();
  if (t.startsWith('{')) {
    const deps = (JSON.parse(t) as { dependencies?: Record<string, string> }).dependencies ?? {};
    for (const [k, v] of Object.entries(deps)) m.set(k, v);
    return m;
  }
  for (const line of t.split('\n')) {
    const r = /^\s*([A-Za-z0-9._-]+)\s*==\s*([^\s;#]+)/.exec(line);
    if (r) m.set(r[1]!.toLowerCase().replace(/[-_.]+/g, '-'), r[2]!);
  }
  return m;
}

function envMap(env: unknown): Map<string, string> {
  const m = new Map<string, string>();
  for (const e of Array.isArray(env) ? (env as string[]) : []) {
    const i = e.indexOf('=');
    if (i > 0) m.set(e.slice(0, i), e.slice(i + 1));
  }
  return m;
}

/**
 * The new image: the new base's layers plus the image's layers above the old base. Its
 * environment is the new base's, with the variables the build itself set (those not equal
 * to the old base's) on top.
 */
export function planRebase(
  image: ImageParts,
  oldBase: ImageParts,
  newBase: ImageParts,
  now = new Date(),
): { manifest: Omit<ImageManifest, 'config'>; config: Record<string, unknown> } {
  const n = countBaseLayers(oldBase.config, image.config);
  if (image.manifest.layers.length !== image.config.rootfs.diff_ids.length) {
    throw new BuildError('the image manifest and config disagree on the number of layers', 'rebase');
  }
  const upperLayers = image.manifest.layers.slice(n);
  const upperDiffIds = image.config.rootfs.diff_ids.slice(n);
  const oldHistory = (oldBase.config.history ?? []) as unknown[];
  const upperHistory = ((image.config.history ?? []) as unknown[]).slice(oldHistory.length);

  const oldEnv = envMap((oldBase.config.config as Record<string, unknown> | undefined)?.Env);
  const imgEnv = envMap((image.config.config as Record<string, unknown> | undefined)?.Env);
  const env = envMap((newBase.config.config as Record<string, unknown> | undefined)?.Env);
  for (const [k, v] of imgEnv) if (oldEnv.get(k) !== v) env.set(k, v);

  const imageIsOci = (image.manifest.mediaType ?? 'application/vnd.oci.image.manifest.v1+json').includes('oci');
  const conv = (d: Descriptor): Descriptor => {
    const mt = imageIsOci ? (DOCKER_TO_OCI[d.mediaType] ?? d.mediaType) : (OCI_TO_DOCKER[d.mediaType] ?? d.mediaType);
    return { mediaType: mt, digest: d.digest, size: d.size };
  };
  const config: Record<string, unknown> = {
    ...image.config,
    created: now.toISOString(),
    rootfs: { type: 'layers', diff_ids: [...newBase.config.rootfs.diff_ids, ...upperDiffIds] },
    history: [...((newBase.config.history ?? []) as unknown[]), ...upperHistory],
    config: { ...((image.config.config as Record<string, unknown>) ?? {}), Env: [...env].map(([k, v]) => `${k}=${v}`) },
  };
  const manifest: Omit<ImageManifest, 'config'> = {
    schemaVersion: 2,
    mediaType: image.manifest.mediaType,
    layers: [...newBase.manifest.layers, ...upperLayers].map(conv),
  };
  return { manifest, config };
}
