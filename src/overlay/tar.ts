/**
 * Reads the entries of one image layer from a stream: gzip, zstd or plain tar, told apart
 * by their magic bytes (so a mislabelled media type does not matter).
 */
import { createHash } from 'node:crypto';
import { Readable, pipeline } from 'node:stream';
import * as zlib from 'node:zlib';
import { extract, type Header } from 'tar-stream';
import { BuildError, UpstreamError } from '../errors.js';
import { normalizeLayerPath, type EntryType, type LayerEntry } from './plan.js';

export interface ReadLayerOptions {
  /** Keep this entry at all (whiteout markers should always be kept). Default: all. */
  keep?: (path: string) => boolean;
  /** Load this file's bytes into `content`. */
  loadContent?: (path: string) => boolean;
  /** Compute this file's sha256 (without keeping its bytes). */
  hash?: (path: string) => boolean;
  /** A name for error messages, e.g. the layer digest. */
  label?: string;
}

function entryType(t: Header['type'] | undefined | null): EntryType {
  switch (t) {
    case 'file':
    case 'contiguous-file':
    case undefined:
    case null:
      return 'file';
    case 'directory':
      return 'dir';
    case 'symlink':
      return 'symlink';
    case 'link':
      return 'hardlink';
    default:
      return 'other';
  }
}

/** Turns a possibly compressed layer stream into a plain tar stream. */
export async function decompressLayer(src: Readable): Promise<Readable> {
  const it = src[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let head = Buffer.alloc(0);
  let done = false;
  while (head.length < 4 && !done) {
    const n = await it.next();
    if (n.done) done = true;
    else head = Buffer.concat([head, n.value]);
  }
  const rest = Readable.from(
    (async function* () {
      if (head.length) yield head;
      if (done) return;
      for (;;) {
        const n = await it.next();
        if (n.done) return;
        yield n.value;
      }
    })(),
  );
  let decoder: NodeJS.ReadWriteStream | undefined;
  if (head[0] === 0x1f && head[1] === 0x8b) decoder = zlib.createGunzip();
  else if (head.readUInt32LE(0) === 0xfd2fb528) {
    const z = zlib as unknown as { createZstdDecompress?: () => NodeJS.ReadWriteStream };
    if (!z.createZstdDecompress) throw new UpstreamError('zstd layers need a Node.js with zlib.createZstdDecompress');
    decoder = z.createZstdDecompress();
  }
  if (!decoder) return rest;
  const out = decoder as unknown as Readable;
  pipeline(rest, decoder, () => undefined);
  return out;
}

/** Reads every entry of a layer, in tar order. */
export async function readLayer(src: Readable, opts: ReadLayerOptions = {}): Promise<LayerEntry[]> {
  const tar = await decompressLayer(src);
  const ex = extract();
  pipeline(tar, ex, () => undefined);
  const out: LayerEntry[] = [];
  for await (const entry of ex) {
    const h = entry.header;
    const path = normalizeLayerPath(h.name);
    if (path === undefined) {
      entry.resume();
      throw new BuildError(`layer ${opts.label ?? ''} has an entry that climbs above the root: ${h.name}`, 'overlay');
    }
    const keep = opts.keep ? opts.keep(path) : true;
    const type = entryType(h.type);
    const e: LayerEntry = { path, type, mode: (h.mode ?? 0) & 0o7777, uid: h.uid ?? 0, gid: h.gid ?? 0, size: h.size ?? 0 };
    if (type === 'symlink') e.linkname = h.linkname ?? '';
    if (type === 'hardlink') {
      const target = normalizeLayerPath(h.linkname ?? '');
      if (target === undefined)
        throw new BuildError(`layer ${opts.label ?? ''} has a hard link that climbs above the root: ${h.name} -> ${h.linkname}`, 'overlay');
      e.linkname = target;
    }
    if (keep && type === 'file' && (opts.loadContent?.(path) || opts.hash?.(path))) {
      const load = opts.loadContent?.(path) ?? false;
      const hash = createHash('sha256');
      const chunks: Buffer[] = [];
      for await (const c of entry) {
        hash.update(c as Buffer);
        if (load) chunks.push(c as Buffer);
      }
      e.sha256 = hash.digest('hex');
      if (load) e.content = Buffer.concat(chunks);
    } else {
      // Discarded: the extractor moves on to the next header once this drains.
      entry.resume();
    }
    if (keep) out.push(e);
  }
  return out;
}
