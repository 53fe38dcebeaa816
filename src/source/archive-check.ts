/**
 * The pure rules of archive extraction: format detection, entry-name normalisation, link
 * checks and the tree of placed entries (duplicates, file-vs-directory clashes, parents that
 * are links). No I/O here: `archive.ts` reads the archive and writes the files.
 */

/** Limits an uploaded archive must stay within. */
export interface ArchiveLimits {
  /** Size of the uploaded file itself. */
  maxArchiveBytes: number;
  /** Entries of every kind (files, directories, links) in the archive. */
  maxFiles: number;
  /** Bytes of file content written while unpacking (counted, never taken from headers). */
  maxUnpackedBytes: number;
  /** Unpacked bytes over archive bytes; above it the archive is treated as a decompression bomb. */
  maxRatio: number;
  /** Length in UTF-8 bytes of an entry's normalised path. */
  maxPathLength: number;
}

const MiB = 1024 * 1024;

/** 100 MiB archive, 20,000 entries, 512 MiB unpacked, ratio 100, paths of 1024 bytes. */
export const DEFAULT_ARCHIVE_LIMITS: ArchiveLimits = Object.freeze({
  maxArchiveBytes: 100 * MiB,
  maxFiles: 20_000,
  maxUnpackedBytes: 512 * MiB,
  maxRatio: 100,
  maxPathLength: 1024,
});

/**
 * Unpacked bytes always allowed whatever the ratio: a tiny archive holding a few hundred
 * KiB of very regular text would otherwise pass the ratio limit without being a bomb.
 */
export const RATIO_GRACE_BYTES = 1 * MiB;

/** The longest symbolic link target accepted (PATH_MAX on Linux). */
export const MAX_LINK_TARGET_BYTES = 4096;

/** Symbolic links followed while checking where a link leads (the kernel's own limit). */
export const MAX_LINK_HOPS = 40;

/** A name longer than this cannot be created on Linux file systems. */
const MAX_SEGMENT_BYTES = 255;

export type ArchiveFormat = 'zip' | 'tar' | 'tar.gz';

/** What the first bytes of an upload say it is; `gzip` still has to hold a tar. */
export type DetectedFormat = ArchiveFormat | 'gzip' | 'empty' | 'unknown';

const ACCEPTED = 'upload the project as a .zip, .tar.gz/.tgz or .tar archive';

/**
 * Tells the format from the first bytes of the upload (at least 262 of them when the file
 * is that long), never from its name.
 */
export function detectArchiveFormat(head: Uint8Array): DetectedFormat {
  if (head.length === 0) return 'empty';
  const b = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  if (b.length >= 4 && b[0] === 0x50 && b[1] === 0x4b && ((b[2] === 3 && b[3] === 4) || (b[2] === 5 && b[3] === 6))) {
    return 'zip';
  }
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) return 'gzip';
  if (hasTarMagic(b)) return 'tar';
  return 'unknown';
}

/** True when a tar header block carries the ustar (POSIX or GNU) magic at offset 257. */
export function hasTarMagic(block: Uint8Array): boolean {
  return block.length >= 262 && Buffer.from(block.buffer, block.byteOffset, block.byteLength).toString('latin1', 257, 262) === 'ustar';
}

/** The message for an upload that is not an archive of an accepted format. */
export function notAnArchiveMessage(detected: DetectedFormat, head: Uint8Array): string {
  if (detected === 'empty') return `the upload is empty (0 bytes); ${ACCEPTED}`;
  if (detected === 'gzip') return `the upload is gzip-compressed but does not hold a tar archive; ${ACCEPTED}`;
  const first = Buffer.from(head.subarray(0, 4))
    .toString('hex')
    .replace(/(..)(?!$)/g, '$1 ');
  return `the upload is not a zip, tar.gz or tar archive (it starts with bytes ${first}; the format is recognised by content, not by file name); ${ACCEPTED}`;
}

/** A checked entry path, or what is wrong with it. */
export type PathCheck = { path: string } | { root: true } | { problem: string };

// C0 controls, DEL and C1 controls: they hide names in listings and break logs and shells.

const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Normalises an entry name to a relative POSIX path: backslashes become slashes (Windows
 * tools write them), empty and `.` segments go. Refuses what could leave the root or cannot
 * be written: control characters, invalid UTF-8, absolute or drive paths, any `..`, paths
 * over `maxPathLength` bytes and segments over 255 bytes. `{ root: true }` is the root
 * itself (`./`).
 */
export function normaliseEntryPath(name: string, maxPathLength: number): PathCheck {
  if (name.length === 0) return { problem: 'the entry has an empty name; re-create the archive' };
  if (CONTROL.test(name)) {
    return {
      problem: 'the name contains control characters (such as NUL, tab or newline); rename the file using printable characters',
    };
  }
  if (name.includes('\uFFFD')) {
    return {
      problem: 'the name is not valid UTF-8; rename the file or create the archive with UTF-8 names',
    };
  }
  const slashed = name.replace(/\\/g, '/');
  if (slashed.startsWith('/') || /^[A-Za-z]:/.test(slashed)) {
    return {
      problem: "the path is absolute; archive the project with paths relative to its root (e.g. 'src/app.py')",
    };
  }
  const raw = slashed.split('/');
  if (raw.includes('..')) {
    return {
      problem:
        "the path contains '..', which would write outside the project (zip slip); archive the project with paths relative to its root and no '..'",
    };
  }
  const segments = raw.filter((s) => s !== '' && s !== '.');
  if (segments.length === 0) return { root: true };
  const path = segments.join('/');
  const bytes = Buffer.byteLength(path);
  if (bytes > maxPathLength)
    return {
      problem: `the path is ${bytes} bytes long, over the limit of ${maxPathLength}; shorten it`,
    };
  const longest = Math.max(...segments.map((s) => Buffer.byteLength(s)));
  if (longest > MAX_SEGMENT_BYTES) {
    return {
      problem: `a name in the path is ${longest} bytes long, over the file system limit of ${MAX_SEGMENT_BYTES}; shorten it`,
    };
  }
  return { path };
}

/** A checked symbolic link target (slashes normalised), or what is wrong with it. */
export type LinkCheck = { target: string } | { problem: string };

/**
 * Checks a symbolic link target lexically: relative, printable, and resolving inside the
 * root from the link's own directory. Chains through other links are checked once the
 * whole archive is known ({@link EntryTree.linkProblems}).
 */
export function checkSymlinkTarget(linkPath: string, rawTarget: string): LinkCheck {
  if (rawTarget.length === 0)
    return {
      problem: 'the symbolic link has an empty target; remove it or point it to a file inside the project',
    };
  if (Buffer.byteLength(rawTarget) > MAX_LINK_TARGET_BYTES) {
    return {
      problem: `the symbolic link target is longer than ${MAX_LINK_TARGET_BYTES} bytes; shorten it`,
    };
  }
  if (CONTROL.test(rawTarget) || rawTarget.includes('\uFFFD')) {
    return {
      problem: 'the symbolic link target contains control characters or invalid UTF-8; point it to a file inside the project',
    };
  }
  const target = rawTarget.replace(/\\/g, '/');
  if (target.startsWith('/') || /^[A-Za-z]:/.test(target)) {
    return {
      problem: `the symbolic link points to the absolute path '${display(rawTarget)}', outside the project; make it a relative link to a file inside the project`,
    };
  }
  const parent = linkPath.split('/').slice(0, -1);
  if (walk(parent, target.split('/')) === null) {
    return {
      problem: `the symbolic link points to '${display(rawTarget)}', which resolves outside the project; make it point to a file inside the project`,
    };
  }
  return { target };
}

/** Applies segments to a stack of directories; null when a `..` climbs above the root. */
function walk(start: string[], segments: string[]): string[] | null {
  const stack = [...start];
  for (const s of segments) {
    if (s === '' || s === '.') continue;
    if (s === '..') {
      if (stack.length === 0) return null;
      stack.pop();
    } else stack.push(s);
  }
  return stack;
}

/** The message for a hard link whose target is not an earlier regular file inside the root. */
export function hardlinkProblem(rawTarget: string, reason: 'outside' | 'missing'): string {
  return reason === 'outside'
    ? `the hard link points to '${display(rawTarget)}', outside the project; re-create the archive without hard links (tar --hard-dereference)`
    : `the hard link points to '${display(rawTarget)}', which is not a regular file earlier in the archive; re-create the archive without hard links (tar --hard-dereference)`;
}

type NodeKind = 'dir' | 'file' | 'symlink';

/** Where an entry may go: the directories to create first (the entry's own, for a directory). */
export type Placement = { newDirs: string[] } | { problem: string };

/**
 * The paths an archive has placed so far. Refuses the same path twice (except a directory
 * repeated, which is harmless), a path used as a file and as a directory, and any entry
 * below a file or below a symbolic link: nothing is ever written through a link.
 * Names that differ only in case are distinct, as on the Linux file systems that hold them.
 */
export class EntryTree {
  private readonly nodes = new Map<string, NodeKind>();
  private readonly links = new Map<string, string>();

  place(path: string, kind: NodeKind): Placement {
    const segments = path.split('/');
    const newDirs: string[] = [];
    for (let i = 1; i < segments.length; i++) {
      const parent = segments.slice(0, i).join('/');
      const found = this.nodes.get(parent);
      if (found === 'file') {
        return {
          problem: `its parent '${display(parent)}' is a file in the archive, not a directory; re-create the archive`,
        };
      }
      if (found === 'symlink') {
        return {
          problem: `its parent '${display(parent)}' is a symbolic link in the archive; entries are never written through links: re-create the archive without the link`,
        };
      }
      if (found === undefined) newDirs.push(parent);
    }
    const existing = this.nodes.get(path);
    if (existing !== undefined) {
      if (existing === 'dir' && kind === 'dir') return { newDirs: [] };
      if (existing === 'dir' || kind === 'dir') {
        return {
          problem: 'the path is used both as a file and as a directory in the archive; re-create the archive',
        };
      }
      return {
        problem: 'the path appears more than once in the archive; re-create the archive so each path appears once',
      };
    }
    if (kind === 'dir') newDirs.push(path);
    for (const d of newDirs) this.nodes.set(d, 'dir');
    this.nodes.set(path, kind);
    return { newDirs };
  }

  /** Records a placed symbolic link's (lexically checked) target. */
  setLinkTarget(path: string, target: string): void {
    this.links.set(path, target);
  }

  isRegularFile(path: string): boolean {
    return this.nodes.get(path) === 'file';
  }

  /**
   * Follows every symbolic link through the others, as the kernel would, and reports those
   * that end outside the root or loop: `a -> .` then `b -> a/../x` is lexically inside but
   * really outside. Unknown path segments count as plain directories.
   */
  linkProblems(): Array<{ path: string; message: string }> {
    const problems: Array<{ path: string; message: string }> = [];
    for (const [path, target] of this.links) {
      const outcome = this.resolve(path);
      if (outcome === 'outside') {
        problems.push({
          path,
          message: `the symbolic link points to '${display(target)}', which leads outside the project through other links in the archive; make it point to a file inside the project`,
        });
      } else if (outcome === 'loop') {
        problems.push({
          path,
          message: `the symbolic link is part of a loop or of a chain of more than ${MAX_LINK_HOPS} links; remove the loop`,
        });
      }
    }
    return problems;
  }

  private resolve(path: string): 'inside' | 'outside' | 'loop' {
    const stack: string[] = [];
    const queue = path.split('/');
    let hops = 0;
    while (queue.length > 0) {
      const s = queue.shift() as string;
      if (s === '' || s === '.') continue;
      if (s === '..') {
        if (stack.length === 0) return 'outside';
        stack.pop();
        continue;
      }
      stack.push(s);
      const target = this.links.get(stack.join('/'));
      if (target !== undefined) {
        if (++hops > MAX_LINK_HOPS) return 'loop';
        stack.pop();
        queue.unshift(...target.split('/'));
      }
    }
    return 'inside';
  }
}

/**
 * An entry name as shown in an issue path or message: control characters escaped, and cut
 * at 200 characters so a hostile name cannot flood a log.
 */
export function display(name: string): string {
  const escaped = name.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return escaped.length > 200 ? `${escaped.slice(0, 200)}…` : escaped;
}

/** The mode an extracted file gets: 0755 when the archive marks it executable by anyone, else 0644. */
export function fileMode(archiveMode: number): number {
  return (archiveMode & 0o111) !== 0 ? 0o755 : 0o644;
}
