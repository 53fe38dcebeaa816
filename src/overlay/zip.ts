/**
 * A deterministic zip writer: the same entries give the same bytes. Entries are sorted by
 * path (byte order), every timestamp is 1980-01-01 00:00, Unix modes go in the external
 * attributes (version made by = Unix), directories end in `/`, and symlinks are entries with
 * mode S_IFLNK whose content is the target, which is how Info-ZIP's `unzip` restores them.
 * Deflate is used when it makes an entry smaller; its output depends on the zlib build, so
 * byte-identical zips are guaranteed for one Node version. No zip64: an archive that would
 * need it (an entry or the whole over 4 GiB, more than 65,535 entries) is rejected.
 */
import { crc32, deflateRawSync } from 'node:zlib';
import { InputError } from '../errors.js';
import { compareBytes, type OverlayEntry } from './plan.js';

const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
const MAX32 = 0xffffffff;
/** 1980-01-01 in MS-DOS date format: ((year - 1980) << 9) | (month << 5) | day. */
const DOS_DATE = (0 << 9) | (1 << 5) | 1;
const DOS_TIME = 0;
const VERSION_MADE_BY = (3 << 8) | 20; // Unix, spec 2.0
const FLAG_UTF8 = 0x0800;

/** Why a path cannot go into a zip, or undefined when it can. */
export function zipPathProblem(path: string): string | undefined {
  if (path === '') return 'empty path';
  if (path.startsWith('/')) return 'absolute path';
  if (path.includes('\\')) return 'backslash in path';
  if (path.includes('\0')) return 'NUL in path';
  if (path.endsWith('/')) return 'trailing slash (directories are marked by their type)';
  for (const seg of path.split('/')) {
    if (seg === '') return 'empty path component';
    if (seg === '.' || seg === '..') return `"${seg}" path component`;
  }
  return undefined;
}

/**
 * Encodes entries as a zip archive, in memory.
 *
 * @example encodeZip([{ path: 'app/main.py', type: 'file', mode: 0o644, content: Buffer.from('print(1)\n') }])
 */
export function encodeZip(input: readonly OverlayEntry[]): Buffer {
  const issues: { path: string; message: string }[] = [];
  const seen = new Set<string>();
  for (const e of input) {
    const problem = zipPathProblem(e.path);
    if (problem) issues.push({ path: e.path, message: problem });
    if (seen.has(e.path)) issues.push({ path: e.path, message: 'duplicate entry' });
    seen.add(e.path);
    if (e.type === 'file' && (e.content?.length ?? 0) > MAX32)
      issues.push({ path: e.path, message: 'file over 4 GiB (zip64 is not supported)' });
  }
  if (input.length > 0xffff) issues.push({ path: '.', message: `${input.length} entries; at most 65535 without zip64` });
  if (issues.length) throw new InputError('cannot write the overlay zip', issues);

  const entries = [...input].sort((a, b) => compareBytes(a.path, b.path));
  const locals: Uint8Array[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.type === 'dir' ? `${e.path}/` : e.path, 'utf8');
    const flags = /^[\x20-\x7e]*$/.test(e.path) ? 0 : FLAG_UTF8;
    let data: Uint8Array;
    let unixMode: number;
    if (e.type === 'dir') {
      data = new Uint8Array();
      unixMode = S_IFDIR | (e.mode & 0o7777);
    } else if (e.type === 'symlink') {
      data = Buffer.from(e.linkname ?? '', 'utf8');
      unixMode = S_IFLNK | 0o777;
    } else {
      data = e.content ?? new Uint8Array();
      unixMode = S_IFREG | (e.mode & 0o7777);
    }
    const crc = crc32(data);
    let method = 0;
    let stored: Uint8Array = data;
    if (e.type === 'file' && data.length > 0) {
      const deflated = deflateRawSync(Buffer.from(data.buffer, data.byteOffset, data.byteLength), { level: 9 });
      if (deflated.length < data.length) {
        method = 8;
        stored = deflated;
      }
    }
    const needed = method === 8 || e.type === 'dir' ? 20 : 10;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(needed, 4);
    local.writeUInt16LE(flags, 6);
    local.writeUInt16LE(method, 8);
    local.writeUInt16LE(DOS_TIME, 10);
    local.writeUInt16LE(DOS_DATE, 12);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(stored.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(0, 28);

    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(VERSION_MADE_BY, 4);
    central.writeUInt16LE(needed, 6);
    central.writeUInt16LE(flags, 8);
    central.writeUInt16LE(method, 10);
    central.writeUInt16LE(DOS_TIME, 12);
    central.writeUInt16LE(DOS_DATE, 14);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(stored.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt16LE(0, 30); // extra
    central.writeUInt16LE(0, 32); // comment
    central.writeUInt16LE(0, 34); // disk
    central.writeUInt16LE(0, 36); // internal attributes
    // High 16 bits: Unix mode; bit 4: MS-DOS directory flag.
    central.writeUInt32LE(((unixMode << 16) | (e.type === 'dir' ? 0x10 : 0)) >>> 0, 38);
    central.writeUInt32LE(offset, 42);

    locals.push(local, name, stored);
    centrals.push(central, name);
    offset += local.length + name.length + stored.length;
    if (offset > MAX32) throw new InputError('cannot write the overlay zip: it would exceed 4 GiB (zip64 is not supported)');
  }
  const cdSize = centrals.reduce((n, b) => n + b.length, 0);
  if (offset + cdSize > MAX32) throw new InputError('cannot write the overlay zip: it would exceed 4 GiB (zip64 is not supported)');
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(0, 4);
  end.writeUInt16LE(0, 6);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cdSize, 12);
  end.writeUInt32LE(offset, 16);
  end.writeUInt16LE(0, 20);
  return Buffer.concat([...locals, ...centrals, end]);
}
