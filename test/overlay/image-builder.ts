/**
 * Builds synthetic images for tests and the bench: real tar layers (tar-stream, optionally
 * gzipped), a real config and manifest, pushed to a real registry.
 */
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import type { RegistryClient } from '../../src/registry/client.js';
import { MEDIA_TYPES, type ImageConfig } from '../../src/registry/types.js';

export interface TarSpec {
  path: string;
  type?: 'file' | 'directory' | 'symlink' | 'link';
  content?: string | Buffer;
  mode?: number;
  uid?: number;
  gid?: number;
  linkname?: string;
}

export interface Layer {
  blob: Buffer;
  diffId: string;
  mediaType: string;
}

const sha = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** A tar of the entries, in the given order, with a fixed mtime. */
export async function makeTar(entries: TarSpec[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    p.on('data', (c: unknown) => chunks.push(c as Buffer));
    p.on('end', () => resolve());
    p.on('error', reject);
  });
  for (const e of entries) {
    const type = e.type ?? 'file';
    const content = type === 'file' ? Buffer.from(e.content ?? '') : undefined;
    const header = {
      name: e.path,
      type,
      mode: e.mode ?? (type === 'directory' ? 0o755 : type === 'symlink' ? 0o777 : 0o644),
      uid: e.uid ?? 0,
      gid: e.gid ?? 0,
      mtime: new Date(1_700_000_000_000),
      ...(e.linkname !== undefined ? { linkname: e.linkname } : {}),
      ...(content ? { size: content.length } : {}),
    };
    await new Promise<void>((resolve, reject) => {
      if (content) p.entry(header, content, (err) => (err ? reject(err) : resolve()));
      else p.entry(header, (err) => (err ? reject(err) : resolve())).end(undefined);
    });
  }
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** A layer blob: gzipped by default (OCI tar+gzip), or a plain tar. */
export async function makeLayer(entries: TarSpec[], opts: { gzip?: boolean; mediaType?: string } = {}): Promise<Layer> {
  const tar = await makeTar(entries);
  const gzip = opts.gzip ?? true;
  const blob = gzip ? gzipSync(tar, { level: 1 }) : tar;
  return { blob, diffId: sha(tar), mediaType: opts.mediaType ?? (gzip ? MEDIA_TYPES.ociLayerGzip : MEDIA_TYPES.ociLayerTar) };
}

export interface PushedImage {
  digest: string;
  mediaType: string;
  size: number;
  config: ImageConfig;
}

/** Pushes layers, a config and a manifest (OCI by default, or Docker v2) under `tag`. */
export async function pushImage(
  client: RegistryClient,
  repo: string,
  tag: string,
  layers: Layer[],
  opts: { docker?: boolean; architecture?: string } = {},
): Promise<PushedImage> {
  for (const l of layers) await client.pushBlob(repo, l.blob);
  const config: ImageConfig = {
    architecture: opts.architecture ?? 'amd64',
    os: 'linux',
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    config: {},
  };
  const configBytes = Buffer.from(JSON.stringify(config));
  await client.pushBlob(repo, configBytes);
  const mediaType = opts.docker ? MEDIA_TYPES.dockerManifest : MEDIA_TYPES.ociManifest;
  const manifest = {
    schemaVersion: 2,
    mediaType,
    config: {
      mediaType: opts.docker ? MEDIA_TYPES.dockerConfig : MEDIA_TYPES.ociConfig,
      digest: sha(configBytes),
      size: configBytes.length,
    },
    layers: layers.map((l) => ({
      mediaType: opts.docker ? MEDIA_TYPES.dockerLayerGzip : l.mediaType,
      digest: sha(l.blob),
      size: l.blob.length,
    })),
  };
  const bytes = Buffer.from(JSON.stringify(manifest));
  const digest = await client.putManifest(repo, tag, bytes, mediaType);
  return { digest, mediaType, size: bytes.length, config };
}
