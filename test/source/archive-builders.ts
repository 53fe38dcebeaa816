/**
 * Archives built by hand for the extraction tests: zips that zip tools refuse to write
 * (`../` names, absolute names, duplicates, mismatched local headers, encryption flags) and
 * decompression bombs compressed on the fly, never written out at full size.
 */
import { constants, crc32, deflateRawSync, gzipSync } from 'node:zlib';
import tar from 'tar-stream';

export interface ZipSpec {
  /** Name in the central directory (and the local header unless `localName`). */
  name: string | Buffer;
  data?: Buffer;
  /** Full Unix mode with type bits, e.g. 0o100644 (the default), 0o120777 for a link. */
  mode?: number;
  /** 0 stored (default) or 8 deflated; any other number is written as is. */
  method?: number;
  /** General purpose flags; bit 0 marks encryption, bit 11 UTF-8 names (set by default). */
  flags?: number;
  localName?: string | Buffer;
  /** Overrides the CRC-32 written in both headers. */
  crc?: number;
  /** Already-compressed data with its real size and CRC (for bombs). */
  precompressed?: { data: Buffer; size: number; crc: number };
}

/** Assembles a zip: local headers and data, central directory, end record. */
export function buildZip(entries: ZipSpec[]): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.isBuffer(e.name) ? e.name : Buffer.from(e.name, 'utf8');
    const localName = e.localName === undefined ? name : Buffer.isBuffer(e.localName) ? e.localName : Buffer.from(e.localName, 'utf8');
    const method = e.precompressed ? 8 : (e.method ?? 0);
    const raw = e.data ?? Buffer.alloc(0);
    const flags = e.flags ?? 0x800;
    // Traditional encryption puts a 12-byte header before the data (left as zeros here).
    const packed = e.precompressed ? e.precompressed.data : method === 8 ? deflateRawSync(raw) : raw;
    const stored = (flags & 1) !== 0 ? Buffer.concat([Buffer.alloc(12), packed]) : packed;
    const size = e.precompressed ? e.precompressed.size : raw.length;
    const crc = e.crc ?? (e.precompressed ? e.precompressed.crc : crc32(raw));
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(flags, 6);
    local.writeUInt16LE(method, 8);
    local.writeUInt16LE(0, 10);
    local.writeUInt16LE(0x21, 12); // 1980-01-01
    local.writeUInt32LE(crc >>> 0, 14);
    local.writeUInt32LE(stored.length, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(localName.length, 26);
    local.writeUInt16LE(0, 28);
    parts.push(local, localName, stored);
    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(0x02014b50, 0);
    cd.writeUInt16LE((3 << 8) | 20, 4); // made by Unix
    cd.writeUInt16LE(20, 6);
    cd.writeUInt16LE(flags, 8);
    cd.writeUInt16LE(method, 10);
    cd.writeUInt16LE(0, 12);
    cd.writeUInt16LE(0x21, 14);
    cd.writeUInt32LE(crc >>> 0, 16);
    cd.writeUInt32LE(stored.length, 20);
    cd.writeUInt32LE(size, 24);
    cd.writeUInt16LE(name.length, 28);
    cd.writeUInt32LE(((e.mode ?? 0o100644) << 16) >>> 0, 38);
    cd.writeUInt32LE(offset, 42);
    central.push(cd, name);
    offset += local.length + localName.length + stored.length;
  }
  const cdBytes = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cdBytes.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, cdBytes, end]);
}

const CHUNK = 16 * 1024 * 1024;

/**
 * Raw deflate of `bytes` zeros (a multiple of 16 MiB) with its CRC-32: one 16 MiB chunk is
 * compressed once with a full flush, which makes it independent of what precedes it, and
 * repeated. 1 GiB of zeros comes out near 1 MiB, in milliseconds.
 */
export function deflatedZeros(bytes: number): {
  segments: Buffer[];
  crc: number;
} {
  const zeros = Buffer.alloc(CHUNK);
  const segment = deflateRawSync(zeros, {
    level: 9,
    finishFlush: constants.Z_FULL_FLUSH,
  });
  const segments: Buffer[] = [];
  let crc = 0;
  for (let done = 0; done < bytes; done += CHUNK) {
    segments.push(segment);
    crc = crc32(zeros, crc);
  }
  return { segments, crc };
}

/** A zip of one entry holding `bytes` zeros. */
export function zipBomb(bytes: number): Buffer {
  const { segments, crc } = deflatedZeros(bytes);
  const data = Buffer.concat([...segments, deflateRawSync(Buffer.alloc(0))]);
  return buildZip([{ name: 'zeros.bin', precompressed: { data, size: bytes, crc } }]);
}

/**
 * A tar.gz of `bytes` zeros: the content of its one file or, with `fileHoldsZeros` false, an
 * empty file followed by `bytes` of zero blocks (a bomb made of padding alone).
 */
export function tarGzBomb(bytes: number, fileHoldsZeros = true): Buffer {
  const header = tarHeader({
    name: fileHoldsZeros ? 'zeros.bin' : 'empty.txt',
    size: fileHoldsZeros ? bytes : 0,
  });
  const { segments } = deflatedZeros(bytes);
  const trailer = Buffer.alloc(1024);
  const headDeflated = deflateRawSync(header, {
    finishFlush: constants.Z_FULL_FLUSH,
  });
  const tail = deflateRawSync(trailer);
  // CRC-32 of header + zeros + trailer, computed in that order.
  let crc = crc32(header);
  const zeros = Buffer.alloc(CHUNK);
  for (let done = 0; done < bytes; done += CHUNK) crc = crc32(zeros, crc);
  crc = crc32(trailer, crc);
  const gzHeader = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
  const foot = Buffer.alloc(8);
  foot.writeUInt32LE(crc >>> 0, 0);
  foot.writeUInt32LE((header.length + bytes + trailer.length) % 2 ** 32, 4);
  return Buffer.concat([gzHeader, headDeflated, ...segments, tail, foot]);
}

/** One ustar header block for a regular file. */
export function tarHeader(opts: { name: string; size: number; mode?: number }): Buffer {
  const b = Buffer.alloc(512);
  b.write(opts.name, 0, 100, 'utf8');
  b.write(`${(opts.mode ?? 0o644).toString(8).padStart(7, '0')}\0`, 100, 'latin1');
  b.write('0000000\0', 108, 'latin1');
  b.write('0000000\0', 116, 'latin1');
  b.write(`${opts.size.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
  b.write('00000000000\0', 136, 'latin1');
  b.write('        ', 148, 'latin1');
  b.write('0', 156, 'latin1');
  b.write('ustar\u000000', 257, 'latin1');
  let sum = 0;
  for (const byte of b) sum += byte;
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return b;
}

export type TarSpec = Partial<tar.Header> & {
  name: string;
  data?: string | Buffer;
};

/** A tar (gzipped unless `gzip: false`) written with tar-stream, which writes whatever it is told. */
export async function buildTar(entries: TarSpec[], gzip = true): Promise<Buffer> {
  const pack = tar.pack();
  const out: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    pack.on('data', (c: unknown) => out.push(c as Buffer));
    pack.on('end', () => resolve());
    pack.on('error', reject);
  });
  for (const { data, ...header } of entries) {
    await new Promise<void>((resolve, reject) => {
      pack.entry(header, data ?? '', (err) => (err ? reject(err) : resolve()));
    });
  }
  pack.finalize();
  await done;
  const plain = Buffer.concat(out);
  if (!gzip) return plain;
  return gzipSync(plain);
}
