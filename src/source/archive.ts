/**
 * Safe extraction of an uploaded project archive (zip, tar.gz or tar), hostile until
 * checked: pipeline step 0, "source". The rules live in `archive-check.ts`; this module reads
 * the archive, counts what it unpacks and writes the files without ever following a link.
 */
import { createHash } from 'node:crypto';
import fs, { constants as fsc, createReadStream, type ReadStream } from 'node:fs';
import { chmod, link, mkdir, open, rm, symlink, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { crc32, createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import yauzl from 'yauzl';
import { InputError, InternalError, type Issue } from '../errors.js';
import {
  DEFAULT_ARCHIVE_LIMITS,
  EntryTree,
  MAX_LINK_TARGET_BYTES,
  RATIO_GRACE_BYTES,
  checkSymlinkTarget,
  detectArchiveFormat,
  display,
  fileMode,
  hardlinkProblem,
  hasTarMagic,
  normaliseEntryPath,
  notAnArchiveMessage,
  type ArchiveFormat,
  type ArchiveLimits,
} from './archive-check.js';

export { DEFAULT_ARCHIVE_LIMITS, type ArchiveFormat, type ArchiveLimits } from './archive-check.js';

/** What {@link extractArchive} unpacked. */
export interface ExtractResult {
  format: ArchiveFormat;
  /** Non-directory entries written: regular files, hard links and symbolic links. */
  files: number;
  /** Bytes of file content written. */
  bytes: number;
  /** Hex sha256 of the uploaded archive file. */
  sha256: string;
}

/** Issues listed before the rest is cut short with a final "more problems" issue. */
const MAX_ISSUES = 100;

/** Extra decompressed tar bytes allowed beyond content: headers, padding, PAX records. */
const TAR_OVERHEAD_PER_ENTRY = 3 * 512;
const TAR_OVERHEAD_BYTES = 8 * 1024 * 1024;

const REFUSED = 'the uploaded archive was refused';

/**
 * Extracts the archive at `input` into `dest`, a directory that must not exist yet, after
 * checking every entry. The format is told by content (zip, gzip holding a tar, plain
 * ustar), never by name.
 *
 * Refused with one {@link InputError} listing every problem found (issue paths `source` or
 * `source/<entry name>`), in which case `dest` does not exist afterwards: not an archive,
 * too large, too many entries, too much unpacked (bytes counted while writing) or a ratio
 * over `maxRatio` (cut short while streaming), `..` or absolute paths (backslashes count as
 * slashes), control characters, overlong paths, links leaving the root (also through other
 * links), hard links not to an earlier regular file, device files, FIFOs, sockets, the same
 * path twice or as both file and directory, entries below a link, encrypted or unsupported
 * zip entries, local zip headers naming another file than the central directory.
 *
 * Files get 0755 when the archive marks them executable, else 0644; directories 0755.
 *
 * @example
 * const { format, files, sha256 } = await extractArchive('/tmp/upload-1', '/tmp/build-1/src');
 */
export async function extractArchive(input: string, dest: string, limits: Partial<ArchiveLimits> = {}): Promise<ExtractResult> {
  const lim: ArchiveLimits = { ...DEFAULT_ARCHIVE_LIMITS, ...limits };
  const fh = await open(input, fsc.O_RDONLY);
  try {
    const { size } = await fh.stat();
    if (size > lim.maxArchiveBytes) {
      throw refused([
        {
          path: 'source',
          message: `the archive is ${size} bytes, over the limit of ${lim.maxArchiveBytes} bytes; leave dependencies and build outputs (node_modules, .venv, dist) out of the upload`,
        },
      ]);
    }
    const head = Buffer.alloc(Math.min(size, 512));
    await fh.read(head, 0, head.length, 0);
    const detected = detectArchiveFormat(head);
    let format: ArchiveFormat;
    if (detected === 'gzip' && hasTarMagic(await gunzipHead(fh.fd, 512))) format = 'tar.gz';
    else if (detected === 'zip' || detected === 'tar') format = detected;
    else throw refused([{ path: 'source', message: notAnArchiveMessage(detected, head) }]);

    const sha256 = await hashFile(fh.fd);
    await mkdir(dirname(dest), { recursive: true });
    try {
      await mkdir(dest, { mode: 0o755 });
    } catch (err) {
      throw new InternalError(`extractArchive: cannot create ${dest}, which must not exist yet: ${(err as Error).message}`);
    }
    try {
      await chmod(dest, 0o755);
      const run = new Extraction(dest, lim, size);
      await run.consume(format === 'zip' ? readZip(fh.fd, lim, run.budget) : readTar(fh.fd, format === 'tar.gz', run.budget));
      if (run.issues.length > 0) throw refused(run.issues);
      return { format, files: run.files, bytes: run.bytes, sha256 };
    } catch (err) {
      await rm(dest, { recursive: true, force: true });
      throw err;
    }
  } finally {
    await fh.close();
  }
}

function refused(issues: Issue[]): InputError {
  return new InputError(REFUSED, issues);
}

/** Ends extraction at once: a limit passed or the archive is unreadable. */
class Fatal extends Error {
  constructor(readonly issue: Issue) {
    super(issue.message);
  }
}

/** Counts unpacked bytes against the limits, so a bomb is cut short mid-stream. */
class Budget {
  content = 0;
  private stream = 0;
  private readonly ratioAllowance: number;
  private readonly streamCeiling: number;

  constructor(
    private readonly lim: ArchiveLimits,
    private readonly archiveBytes: number,
  ) {
    this.ratioAllowance = Math.max(lim.maxRatio * archiveBytes, RATIO_GRACE_BYTES);
    this.streamCeiling = lim.maxUnpackedBytes + lim.maxFiles * TAR_OVERHEAD_PER_ENTRY + TAR_OVERHEAD_BYTES;
  }

  /**
   * Refuses early when a header already declares more than the unpacked limit leaves. Headers
   * only ever shorten the run: the bytes are counted again as they come.
   */
  declare(size: number): void {
    if (this.content + size > this.lim.maxUnpackedBytes) throw this.unpackedFatal();
  }

  /** Bytes of entry content, counted as they are read. */
  takeContent(n: number): void {
    this.content += n;
    if (this.content > this.lim.maxUnpackedBytes) throw this.unpackedFatal();
    if (this.content > this.ratioAllowance) throw this.ratioFatal();
  }

  /** Bytes of the whole decompressed tar stream: headers and padding can be a bomb too. */
  takeStream(n: number): void {
    this.stream += n;
    if (this.stream > this.ratioAllowance) throw this.ratioFatal();
    if (this.stream > this.streamCeiling) throw this.unpackedFatal();
  }

  private unpackedFatal(): Fatal {
    return new Fatal({
      path: 'source',
      message: `the archive unpacks to more than ${this.lim.maxUnpackedBytes} bytes; leave large files, dependencies and build outputs out of the upload`,
    });
  }

  private ratioFatal(): Fatal {
    return new Fatal({
      path: 'source',
      message: `the archive unpacks to more than ${this.lim.maxRatio} times its own ${this.archiveBytes} bytes, which marks a decompression bomb; upload an archive of the project's real files`,
    });
  }
}

type EntryKind = 'file' | 'directory' | 'symlink' | 'hardlink' | 'character device' | 'block device' | 'FIFO' | 'socket' | 'unknown';

/** One entry as a reader yields it. Content must be consumed or skipped before the next. */
interface ArchiveEntry {
  name: string;
  kind: EntryKind;
  /** Permission bits from the archive (0 when it has none). */
  mode: number;
  /** Size the header claims; used only to refuse early. */
  declaredSize: number;
  /** Tar link targets; a zip symlink's target is its content. */
  linkTarget?: string;
  /** A problem the reader found (encryption, unsupported compression, header mismatch). */
  problem?: string;
  /** Describes an unknown kind (e.g. a tar type flag). */
  kindDetail?: string;
  /** The content, counted against the budget by the reader. */
  content(): AsyncIterable<Buffer>;
  /** Passes over the content (tar must still read it, counted; zip need not). */
  skip(): Promise<void>;
}

class Extraction {
  readonly issues: Issue[] = [];
  readonly budget: Budget;
  files = 0;
  bytes = 0;
  private entries = 0;
  private readonly tree = new EntryTree();

  constructor(
    private readonly dest: string,
    private readonly lim: ArchiveLimits,
    archiveBytes: number,
  ) {
    this.budget = new Budget(lim, archiveBytes);
  }

  async consume(entries: AsyncIterable<ArchiveEntry>): Promise<void> {
    try {
      for await (const entry of entries) {
        if (++this.entries > this.lim.maxFiles) throw tooManyFiles(this.lim.maxFiles);
        const problem = await this.handle(entry);
        if (problem !== undefined) {
          this.add({ path: `source/${display(entry.name)}`, message: problem });
          await entry.skip();
        }
      }
      for (const p of this.tree.linkProblems()) this.add({ path: `source/${display(p.path)}`, message: p.message });
    } catch (err) {
      if (err instanceof Fatal) this.issues.push(err.issue);
      else if (err instanceof TooManyIssues) return;
      else throw err;
    }
  }

  private add(issue: Issue): void {
    if (this.issues.length >= MAX_ISSUES) {
      this.issues.push({
        path: 'source',
        message: `more than ${MAX_ISSUES} problems were found; fix the ones listed and upload again`,
      });
      throw new TooManyIssues();
    }
    this.issues.push(issue);
  }

  /** Checks one entry and writes it while the archive is still clean; returns its problem. */
  private async handle(entry: ArchiveEntry): Promise<string | undefined> {
    if (entry.problem !== undefined) return entry.problem;
    const checked = normaliseEntryPath(entry.name, this.lim.maxPathLength);
    if ('problem' in checked) return checked.problem;
    if ('root' in checked) {
      if (entry.kind === 'directory') return skipThen(entry, undefined);
      return 'the entry names the project root itself but is not a directory; re-create the archive';
    }
    const path = checked.path;
    const writing = this.issues.length === 0;
    switch (entry.kind) {
      case 'directory': {
        const placed = this.tree.place(path, 'dir');
        if ('problem' in placed) return placed.problem;
        if (writing) for (const d of placed.newDirs) await makeDir(join(this.dest, d));
        return skipThen(entry, undefined);
      }
      case 'file': {
        const placed = this.tree.place(path, 'file');
        if ('problem' in placed) return placed.problem;
        this.budget.declare(entry.declaredSize);
        if (!writing) return skipThen(entry, undefined);
        for (const d of placed.newDirs) await makeDir(join(this.dest, d));
        this.bytes += await writeFile(join(this.dest, path), fileMode(entry.mode), entry.content());
        this.files++;
        return undefined;
      }
      case 'symlink': {
        let raw = entry.linkTarget;
        if (raw === undefined) {
          if (entry.declaredSize > MAX_LINK_TARGET_BYTES)
            return `the symbolic link target is longer than ${MAX_LINK_TARGET_BYTES} bytes; shorten it`;
          raw = await readAll(entry.content(), MAX_LINK_TARGET_BYTES);
        }
        const target = checkSymlinkTarget(path, raw);
        if ('problem' in target) return target.problem;
        const placed = this.tree.place(path, 'symlink');
        if ('problem' in placed) return placed.problem;
        this.tree.setLinkTarget(path, target.target);
        if (writing) {
          for (const d of placed.newDirs) await makeDir(join(this.dest, d));
          await symlink(target.target, join(this.dest, path));
          this.files++;
        }
        return skipThen(entry, undefined);
      }
      case 'hardlink': {
        const raw = entry.linkTarget ?? '';
        const target = normaliseEntryPath(raw, this.lim.maxPathLength);
        if (!('path' in target)) return hardlinkProblem(raw, 'outside');
        if (!this.tree.isRegularFile(target.path)) return hardlinkProblem(raw, 'missing');
        const placed = this.tree.place(path, 'file');
        if ('problem' in placed) return placed.problem;
        if (writing) {
          for (const d of placed.newDirs) await makeDir(join(this.dest, d));
          // link(2) does not follow a final symlink, and the target was checked to be a file we wrote.
          await link(join(this.dest, target.path), join(this.dest, path));
          this.files++;
        }
        return skipThen(entry, undefined);
      }
      case 'unknown':
        return `the entry has an unsupported type (${entry.kindDetail ?? 'unknown'}); only regular files, directories, symbolic links and hard links are accepted`;
      default:
        return `the entry is a ${entry.kind}; only regular files, directories, symbolic links and hard links are accepted: leave it out of the archive`;
    }
  }
}

class TooManyIssues extends Error {}

function tooManyFiles(max: number): Fatal {
  return new Fatal({
    path: 'source',
    message: `the archive holds more than ${max} entries (files, directories and links); leave dependencies and generated files (node_modules, .venv, dist) out of the upload`,
  });
}

async function skipThen<T>(entry: ArchiveEntry, value: T): Promise<T> {
  await entry.skip();
  return value;
}

async function makeDir(abs: string): Promise<void> {
  await mkdir(abs, { mode: 0o755 });
  // mkdir's mode passes through the umask; the mode of the tree must not.
  await chmod(abs, 0o755);
}

/** Creates a new file (never an existing path, never through a link) and streams content in. */
async function writeFile(abs: string, mode: number, content: AsyncIterable<Buffer>): Promise<number> {
  const fh: FileHandle = await open(abs, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
  try {
    let written = 0;
    for await (const chunk of content) {
      for (let at = 0; at < chunk.length;) at += (await fh.write(chunk, at, chunk.length - at)).bytesWritten;
      written += chunk.length;
    }
    await fh.chmod(mode);
    return written;
  } finally {
    await fh.close();
  }
}

async function readAll(content: AsyncIterable<Buffer>, max: number): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of content) {
    n += chunk.length;
    if (n > max)
      throw new Fatal({
        path: 'source',
        message: `a symbolic link target is longer than ${max} bytes; shorten it`,
      });
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * A read stream over the whole upload through our own descriptor. Destroying an fs stream
 * closes its descriptor even with autoClose off, so its close is made a no-op: the
 * descriptor belongs to extractArchive, which reads the one file it checked several times.
 */
function readFd(fd: number): ReadStream {
  return createReadStream('', {
    fd,
    start: 0,
    autoClose: false,
    fs: KEEP_OPEN,
  });
}

const KEEP_OPEN = {
  open: fs.open,
  read: fs.read,
  close: (_fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => cb(null),
};

async function hashFile(fd: number): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of readFd(fd)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The first `n` decompressed bytes of a gzip file (fewer if it is shorter or broken). */
async function gunzipHead(fd: number, n: number): Promise<Buffer> {
  const source = readFd(fd);
  const gunzip = createGunzip();
  const chunks: Buffer[] = [];
  let got = 0;
  try {
    source.pipe(gunzip);
    for await (const chunk of gunzip) {
      chunks.push(chunk as Buffer);
      got += (chunk as Buffer).length;
      if (got >= n) break;
    }
  } catch {
    // A broken gzip stream: whatever came out before it is all there is.
  } finally {
    source.unpipe(gunzip);
    source.destroy();
    gunzip.destroy();
  }
  return Buffer.concat(chunks).subarray(0, n);
}

function corrupt(detail: string, entry?: string): Fatal {
  return new Fatal({
    path: entry === undefined ? 'source' : `source/${display(entry)}`,
    message: `the archive is corrupt or truncated (${detail}); re-create it and upload again`,
  });
}

// ---------------------------------------------------------------------------------------
// tar and tar.gz

const TAR_KINDS: Record<string, EntryKind> = {
  file: 'file',
  'contiguous-file': 'file',
  directory: 'directory',
  symlink: 'symlink',
  link: 'hardlink',
  'character-device': 'character device',
  'block-device': 'block device',
  fifo: 'FIFO',
};

async function* readTar(fd: number, gzipped: boolean, budget: Budget): AsyncGenerator<ArchiveEntry> {
  const source = readFd(fd);
  const gunzip = gzipped ? createGunzip() : undefined;
  const extract = tar.extract();
  const fail = (err: Error) => extract.destroy(err);
  source.on('error', fail);
  const decompressed = gunzip ?? source;
  if (gunzip) {
    gunzip.on('error', fail);
    source.pipe(gunzip);
  }
  decompressed.on('data', (chunk: Buffer) => {
    try {
      budget.takeStream(chunk.length);
    } catch (err) {
      fail(err as Error);
    }
  });
  decompressed.pipe(extract as unknown as NodeJS.WritableStream);
  let current: string | undefined;
  try {
    for await (const stream of extract) {
      const header = stream.header;
      current = header.name;
      const body = async function* (): AsyncGenerator<Buffer> {
        try {
          for await (const chunk of stream as AsyncIterable<Buffer>) {
            budget.takeContent(chunk.length);
            yield chunk;
          }
        } catch (err) {
          if (err instanceof Fatal) throw err;
          throw corrupt((err as Error).message, header.name);
        }
      };
      let consumed = false;
      const content = () => {
        consumed = true;
        return body();
      };
      const entry: ArchiveEntry = {
        name: header.name,
        kind: (header.type !== null && TAR_KINDS[header.type]) || 'unknown',
        kindDetail: header.type === null ? 'a tar type flag such as a GNU sparse file or volume label' : `tar type ${header.type}`,
        mode: header.mode ?? 0,
        declaredSize: header.size ?? 0,
        linkTarget: header.type === 'symlink' || header.type === 'link' ? (header.linkname ?? '') : undefined,
        content,
        skip: async () => {
          if (consumed) return;
          consumed = true;
          for await (const chunk of body()) void chunk;
        },
      };
      yield entry;
      // Whatever the consumer left unread is still counted before the next header.
      await entry.skip();
    }
  } catch (err) {
    if (err instanceof Fatal) throw err;
    throw corrupt((err as Error).message, current);
  } finally {
    source.destroy();
    gunzip?.destroy();
    extract.destroy();
  }
}

// ---------------------------------------------------------------------------------------
// zip

const S_IFMT = 0o170000;
const ZIP_KINDS: Record<number, EntryKind> = {
  0o100000: 'file',
  0o040000: 'directory',
  0o120000: 'symlink',
  0o020000: 'character device',
  0o060000: 'block device',
  0o010000: 'FIFO',
  0o140000: 'socket',
};

async function* readZip(fd: number, lim: ArchiveLimits, budget: Budget): AsyncGenerator<ArchiveEntry> {
  let zip: yauzl.ZipFile;
  try {
    zip = await yauzl.fromFdPromise(fd, {
      lazyEntries: true,
      autoClose: false,
      decodeStrings: false,
      validateEntrySizes: true,
    });
  } catch (err) {
    throw corrupt((err as Error).message);
  }
  if (zip.entryCount > lim.maxFiles) throw tooManyFiles(lim.maxFiles);
  let current: string | undefined;
  try {
    for await (const e of zip.eachEntry()) {
      // With decodeStrings off, yauzl leaves names undecoded so that it reports nothing itself.
      const name = yauzl.getFileNameLowLevel(e.generalPurposeBitFlag, e.fileNameRaw, e.extraFields, true);
      current = name;
      const unixMode = e.externalFileAttributes >>> 16;
      let kind: EntryKind;
      if (name.endsWith('/') || name.endsWith('\\')) kind = 'directory';
      else if ((unixMode & S_IFMT) !== 0) kind = ZIP_KINDS[unixMode & S_IFMT] ?? 'unknown';
      else kind = (e.externalFileAttributes & 0x10) !== 0 ? 'directory' : 'file';
      let problem: string | undefined;
      if (e.isEncrypted()) problem = 'the entry is encrypted; upload an archive without a password';
      else if (!e.canDecodeFileData()) {
        problem = `the entry uses compression method ${e.compressionMethod}, which is not supported; re-create the archive with deflate (the default of zip tools)`;
      } else {
        const local = await zip.readLocalFileHeaderPromise(e);
        if (!local.fileName.equals(e.fileNameRaw)) {
          problem = `the entry's local header names '${display(local.fileName.toString('utf8'))}', not the name in the central directory; the archive is malformed: re-create it with a standard zip tool`;
        }
      }
      const entryName = name;
      yield {
        name,
        kind,
        kindDetail: `zip file type 0o${(unixMode & S_IFMT).toString(8)}`,
        mode: unixMode & 0o7777,
        declaredSize: e.uncompressedSize,
        problem,
        content: () => zipContent(zip, e, entryName, budget),
        skip: async () => {},
      };
    }
  } catch (err) {
    if (err instanceof Fatal) throw err;
    throw corrupt((err as Error).message, current);
  }
  // No zip.close(): it would close extractArchive's descriptor.
}

/** An entry's data, counted as it inflates, with its CRC checked at the end. */
async function* zipContent(zip: yauzl.ZipFile, e: yauzl.Entry, name: string, budget: Budget): AsyncGenerator<Buffer> {
  let stream: Readable | undefined;
  let crc = 0;
  try {
    stream = await zip.openReadStreamPromise(e);
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      budget.takeContent(chunk.length);
      crc = crc32(chunk, crc);
      yield chunk;
    }
  } catch (err) {
    if (err instanceof Fatal) throw err;
    throw corrupt((err as Error).message, name);
  } finally {
    stream?.destroy();
  }
  if (crc >>> 0 !== e.crc32 >>> 0) throw corrupt('CRC-32 mismatch', name);
}
