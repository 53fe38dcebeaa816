import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, link, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError, InternalError, type Issue } from '../../src/errors.js';
import { DEFAULT_ARCHIVE_LIMITS, extractArchive, type ArchiveLimits } from '../../src/source/archive.js';
import { buildTar, buildZip, tarGzBomb, zipBomb } from './archive-builders.js';

const GiB = 1024 * 1024 * 1024;

const ZIP_SLIP =
  "the path contains '..', which would write outside the project (zip slip); archive the project with paths relative to its root and no '..'";
const ABSOLUTE = "the path is absolute; archive the project with paths relative to its root (e.g. 'src/app.py')";
const DUPLICATE = 'the path appears more than once in the archive; re-create the archive so each path appears once';
const FILE_AND_DIR = 'the path is used both as a file and as a directory in the archive; re-create the archive';
const ACCEPTED = 'upload the project as a .zip, .tar.gz/.tgz or .tar archive';
const CONTROL = 'the name contains control characters (such as NUL, tab or newline); rename the file using printable characters';
const NOT_ACCEPTED = 'only regular files, directories, symbolic links and hard links are accepted: leave it out of the archive';

let work: string;
let counter = 0;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'svcbuild-archive-test-'));
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

/** A fresh upload path and a destination whose parent does not exist yet either. */
function place(): { input: string; dest: string } {
  counter++;
  return {
    input: join(work, `upload-${counter}`),
    dest: join(work, `build-${counter}`, 'project'),
  };
}

/** Extracts `bytes`, expects an InputError, checks nothing was left behind, gives its issues. */
async function refused(bytes: Buffer, limits?: Partial<ArchiveLimits>): Promise<Issue[]> {
  const { input, dest } = place();
  await writeFile(input, bytes);
  const err: unknown = await extractArchive(input, dest, limits).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(InputError);
  expect((err as InputError).message.startsWith('the uploaded archive was refused\n')).toBe(true);
  expect(existsSync(dest)).toBe(false);
  return (err as InputError).issues;
}

/** Every path below `root`, sorted: kind, mode, and content or link target. */
async function listTree(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const rel of (await readdir(root, { recursive: true })).sort()) {
    const abs = join(root, rel);
    const st = await lstat(abs);
    const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
    if (st.isSymbolicLink()) out.push(`${rel}: symlink -> ${await readlink(abs)}`);
    else if (st.isDirectory()) out.push(`${rel}: dir ${mode}`);
    else out.push(`${rel}: file ${mode} ${JSON.stringify(await readFile(abs, 'utf8'))}`);
  }
  return out;
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** A small project on disk with odd modes, a case-only name pair, links inside and a hard link. */
async function makeProject(): Promise<string> {
  const dir = join(work, `project-${++counter}`);
  await mkdir(join(dir, 'src/pkg'), { recursive: true });
  await mkdir(join(dir, 'bin'));
  await mkdir(join(dir, 'data'));
  await writeFile(join(dir, 'src/app.py'), "print('hi')\n");
  await writeFile(join(dir, 'src/pkg/__init__.py'), '');
  await link(join(dir, 'src/app.py'), join(dir, 'src/same.py'));
  await writeFile(join(dir, 'bin/run.sh'), '#!/bin/sh\necho run\n');
  await chmod(join(dir, 'bin/run.sh'), 0o755);
  await writeFile(join(dir, 'secret.txt'), 's\n');
  await chmod(join(dir, 'secret.txt'), 0o600);
  await writeFile(join(dir, 'tool'), '#!/bin/sh\n');
  await chmod(join(dir, 'tool'), 0o750);
  await writeFile(join(dir, 'README'), 'upper\n');
  await writeFile(join(dir, 'readme'), 'lower\n');
  await symlink('src/app.py', join(dir, 'current'));
  await symlink('../src/app.py', join(dir, 'bin/app'));
  await chmod(join(dir, 'data'), 0o700);
  return dir;
}

const PROJECT_TREE = [
  'README: file 0644 "upper\\n"',
  'bin: dir 0755',
  'bin/app: symlink -> ../src/app.py',
  'bin/run.sh: file 0755 "#!/bin/sh\\necho run\\n"',
  'current: symlink -> src/app.py',
  'data: dir 0755',
  'readme: file 0644 "lower\\n"',
  'secret.txt: file 0644 "s\\n"',
  'src: dir 0755',
  'src/app.py: file 0644 "print(\'hi\')\\n"',
  'src/pkg: dir 0755',
  'src/pkg/__init__.py: file 0644 ""',
  'src/same.py: file 0644 "print(\'hi\')\\n"',
  'tool: file 0755 "#!/bin/sh\\n"',
];
// Regular file content: app.py, same.py, __init__.py, run.sh, secret.txt, tool, README, readme.
const PROJECT_BYTES = 12 + 12 + 0 + 19 + 2 + 10 + 6 + 6;

describe('extractArchive: good archives', () => {
  it('extracts a zip made by Info-ZIP with exact files, modes, contents and inner links', async () => {
    // GIVEN a project zipped by the zip CLI, links stored as links (-y)
    const dir = await makeProject();
    const { input, dest } = place();
    execFileSync('zip', ['-q', '-r', '-y', input + '.zip', '.'], { cwd: dir });
    await rm(input, { force: true });
    const bytes = await readFile(input + '.zip');
    await writeFile(input, bytes);
    // WHEN it is extracted
    const result = await extractArchive(input, dest);
    // THEN every file is there with a normalised mode, and links inside the root are kept
    expect(result).toEqual({
      format: 'zip',
      files: 10,
      bytes: PROJECT_BYTES,
      sha256: sha256(bytes),
    });
    expect(await listTree(dest)).toEqual(PROJECT_TREE);
  });

  it('extracts a tar.gz made by GNU tar, hard link kept as a hard link', async () => {
    // GIVEN the same project as a tar.gz (entries ./, ./src/..., src/same.py a hard link), named .zip to show names do not matter
    const dir = await makeProject();
    const { input, dest } = place();
    execFileSync('tar', ['-czf', input, '-C', dir, '.']);
    // WHEN it is extracted
    const result = await extractArchive(input, dest);
    // THEN the tree is the same as from the zip
    expect(result).toEqual({
      format: 'tar.gz',
      files: 10,
      bytes: PROJECT_BYTES - 12,
      sha256: sha256(await readFile(input)),
    });
    expect(await listTree(dest)).toEqual(PROJECT_TREE);
    // AND the hard link shares its inode with its target (its bytes were not written twice)
    expect((await lstat(join(dest, 'src/same.py'))).ino).toBe((await lstat(join(dest, 'src/app.py'))).ino);
  });

  it('extracts a plain tar and an empty zip', async () => {
    // GIVEN a plain (not gzipped) tar whose file comes before its directory entry
    const tarBytes = await buildTar(
      [
        { name: 'a/b.txt', data: 'b' },
        { name: 'a', type: 'directory', mode: 0o700 },
      ],
      false,
    );
    const { input, dest } = place();
    await writeFile(input, tarBytes);
    // WHEN extracted THEN the format is tar and the repeated directory is harmless
    expect(await extractArchive(input, dest)).toEqual({
      format: 'tar',
      files: 1,
      bytes: 1,
      sha256: sha256(tarBytes),
    });
    expect(await listTree(dest)).toEqual(['a: dir 0755', 'a/b.txt: file 0644 "b"']);
    // AND GIVEN the 22-byte empty zip WHEN extracted THEN an empty directory results
    const empty = place();
    await writeFile(empty.input, buildZip([]));
    expect(await extractArchive(empty.input, empty.dest)).toEqual({
      format: 'zip',
      files: 0,
      bytes: 0,
      sha256: sha256(buildZip([])),
    });
    expect(await readdir(empty.dest)).toEqual([]);
  });

  it('refuses to extract into an existing directory, and leaves it alone', async () => {
    // GIVEN a destination that exists already
    const { input, dest } = place();
    await writeFile(input, buildZip([{ name: 'a.txt', data: Buffer.from('a') }]));
    await mkdir(dest, { recursive: true });
    await writeFile(join(dest, 'keep'), 'k');
    // WHEN extracting into it THEN it is a caller's bug, and the directory is untouched
    await expect(extractArchive(input, dest)).rejects.toBeInstanceOf(InternalError);
    expect(await readdir(dest)).toEqual(['keep']);
  });

  it('has the documented default limits', () => {
    // GIVEN the defaults THEN they are the documented numbers
    expect(DEFAULT_ARCHIVE_LIMITS).toEqual({
      maxArchiveBytes: 100 * 1024 * 1024,
      maxFiles: 20_000,
      maxUnpackedBytes: 512 * 1024 * 1024,
      maxRatio: 100,
      maxPathLength: 1024,
    });
  });
});

describe('extractArchive: not an archive, or too big', () => {
  it('refuses an empty upload', async () => {
    // GIVEN an empty file WHEN extracted THEN it is refused as empty
    expect(await refused(Buffer.alloc(0))).toEqual([{ path: 'source', message: `the upload is empty (0 bytes); ${ACCEPTED}` }]);
  });

  it('refuses a JPEG whatever it is named, saying which formats are accepted', async () => {
    // GIVEN the first bytes of a JPEG (uploaded as "project.zip")
    const jpeg = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0x10]), Buffer.from('JFIF\0'), Buffer.alloc(600)]);
    // WHEN extracted THEN the bytes, not the name, decide
    expect(await refused(jpeg)).toEqual([
      {
        path: 'source',
        message: `the upload is not a zip, tar.gz or tar archive (it starts with bytes ff d8 ff e0; the format is recognised by content, not by file name); ${ACCEPTED}`,
      },
    ]);
  });

  it('refuses a gzip file that holds no tar', async () => {
    // GIVEN gzipped text WHEN extracted THEN it is refused as gzip without a tar
    expect(await refused(gzipSync(Buffer.from('hello\n'.repeat(200))))).toEqual([
      {
        path: 'source',
        message: `the upload is gzip-compressed but does not hold a tar archive; ${ACCEPTED}`,
      },
    ]);
  });

  it('refuses an archive larger than the limit before reading it', async () => {
    // GIVEN a 2,000-byte zip and a limit of 1,000 bytes
    const bytes = buildZip([{ name: 'a.txt', data: Buffer.alloc(1900, 'a') }]);
    // WHEN extracted THEN the size is refused
    expect(await refused(bytes, { maxArchiveBytes: 1000 })).toEqual([
      {
        path: 'source',
        message: `the archive is ${bytes.length} bytes, over the limit of 1000 bytes; leave dependencies and build outputs (node_modules, .venv, dist) out of the upload`,
      },
    ]);
  });

  it('refuses too many entries, in a zip (from its directory) and in a tar', async () => {
    // GIVEN 5 entries and a limit of 3
    const names = ['a', 'b', 'c', 'd', 'e'];
    const message =
      'the archive holds more than 3 entries (files, directories and links); leave dependencies and generated files (node_modules, .venv, dist) out of the upload';
    // WHEN extracted THEN both formats are refused
    expect(await refused(buildZip(names.map((name) => ({ name }))), { maxFiles: 3 })).toEqual([{ path: 'source', message }]);
    expect(
      await refused(await buildTar(names.map((name) => ({ name }))), {
        maxFiles: 3,
      }),
    ).toEqual([{ path: 'source', message }]);
  });

  it('refuses content over the unpacked limit', async () => {
    // GIVEN 5,000 random (incompressible) bytes and an unpacked limit of 1,000
    const data = Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7919) % 251));
    const message = 'the archive unpacks to more than 1000 bytes; leave large files, dependencies and build outputs out of the upload';
    // WHEN extracted as a zip and as a tar.gz THEN both are refused
    expect(
      await refused(buildZip([{ name: 'big.bin', data, method: 8 }]), {
        maxUnpackedBytes: 1000,
      }),
    ).toEqual([{ path: 'source', message }]);
    expect(
      await refused(await buildTar([{ name: 'big.bin', data }]), {
        maxUnpackedBytes: 1000,
      }),
    ).toEqual([{ path: 'source', message }]);
  });
});

describe('extractArchive: decompression bombs', () => {
  const ratio = (size: number) =>
    `the archive unpacks to more than 100 times its own ${size} bytes, which marks a decompression bomb; upload an archive of the project's real files`;

  it('refuses an honest 1 GiB zip bomb from its declared size, before inflating it', async () => {
    // GIVEN a zip of 1 GiB of zeros (about 1 MiB) that declares its size
    const bomb = zipBomb(GiB);
    // WHEN extracted with the default limits THEN the declared size is over the 512 MiB limit
    expect(await refused(bomb)).toEqual([
      {
        path: 'source',
        message: 'the archive unpacks to more than 536870912 bytes; leave large files, dependencies and build outputs out of the upload',
      },
    ]);
  });

  it('cuts a 1 GiB zip bomb short by ratio while inflating', async () => {
    // GIVEN the same bomb and an unpacked limit that its header passes
    const bomb = zipBomb(GiB);
    // WHEN extracted THEN inflating stops at 100 times the archive size
    const started = Date.now();
    expect(await refused(bomb, { maxUnpackedBytes: 2 * GiB })).toEqual([{ path: 'source', message: ratio(bomb.length) }]);
    // AND it stopped well before inflating the whole gigabyte
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it('cuts a 1 GiB tar.gz bomb short by ratio while decompressing', async () => {
    // GIVEN a tar.gz of one 1 GiB file of zeros and an unpacked limit its header passes
    const bomb = tarGzBomb(GiB);
    // WHEN extracted THEN decompression stops at 100 times the archive size
    expect(await refused(bomb, { maxUnpackedBytes: 2 * GiB })).toEqual([{ path: 'source', message: ratio(bomb.length) }]);
  });

  it('cuts a tar.gz bomb made of 1 GiB of zero blocks (no file content at all) short', async () => {
    // GIVEN an empty file followed by 1 GiB of zero padding blocks
    const bomb = tarGzBomb(GiB, false);
    // WHEN extracted with the default limits THEN the decompressed stream itself is counted
    expect(await refused(bomb)).toEqual([{ path: 'source', message: ratio(bomb.length) }]);
  });
});

describe('extractArchive: hostile names', () => {
  it('refuses ../ anywhere, also written with backslashes, and absolute paths, listing every problem', async () => {
    // GIVEN a zip with every kind of escaping name next to a good file
    const zip = buildZip([
      { name: 'ok.txt', data: Buffer.from('ok') },
      { name: '../evil', data: Buffer.from('x') },
      { name: 'a/../../evil', data: Buffer.from('x') },
      { name: 'a\\..\\..\\evil', data: Buffer.from('x') },
      { name: '/etc/cron.d/evil', data: Buffer.from('x') },
      { name: 'C:\\Windows\\evil', data: Buffer.from('x') },
      { name: '\\\\server\\share\\evil', data: Buffer.from('x') },
    ]);
    // WHEN extracted THEN each bad entry has its own issue, in archive order
    expect(await refused(zip)).toEqual([
      { path: 'source/../evil', message: ZIP_SLIP },
      { path: 'source/a/../../evil', message: ZIP_SLIP },
      { path: 'source/a\\..\\..\\evil', message: ZIP_SLIP },
      { path: 'source//etc/cron.d/evil', message: ABSOLUTE },
      { path: 'source/C:\\Windows\\evil', message: ABSOLUTE },
      { path: 'source/\\\\server\\share\\evil', message: ABSOLUTE },
    ]);
  });

  it('refuses the same hostile names in a tar.gz', async () => {
    // GIVEN a tar.gz with ../ and absolute names
    const bytes = await buildTar([
      { name: '../evil', data: 'x' },
      { name: '/etc/passwd', data: 'x' },
    ]);
    // WHEN extracted THEN both are refused
    expect(await refused(bytes)).toEqual([
      { path: 'source/../evil', message: ZIP_SLIP },
      { path: 'source//etc/passwd', message: ABSOLUTE },
    ]);
  });

  it('refuses NUL and control characters, invalid UTF-8 and overlong paths', async () => {
    // GIVEN names with NUL, a newline, an invalid UTF-8 byte and a 31-byte path under a limit of 30
    const zip = buildZip([
      { name: Buffer.from('x\0y.txt', 'latin1'), data: Buffer.from('x') },
      { name: 'a\nb.txt', data: Buffer.from('x') },
      { name: Buffer.from([0x61, 0xff, 0x62]), data: Buffer.from('x') },
      { name: 'abcdefghij/abcdefghij/abcdefghi', data: Buffer.from('x') },
      { name: `${'n'.repeat(256)}`, data: Buffer.from('x') },
    ]);
    // WHEN extracted THEN each is refused, names shown with control characters escaped
    expect(await refused(zip, { maxPathLength: 300 })).toEqual([
      { path: 'source/x\\x00y.txt', message: CONTROL },
      { path: 'source/a\\x0ab.txt', message: CONTROL },
      {
        path: 'source/a\uFFFDb',
        message: 'the name is not valid UTF-8; rename the file or create the archive with UTF-8 names',
      },
      {
        path: `source/${'n'.repeat(200)}…`,
        message: 'a name in the path is 256 bytes long, over the file system limit of 255; shorten it',
      },
    ]);
    // AND GIVEN the 31-byte path alone and a limit of 30 WHEN extracted THEN it is too long
    const long = buildZip([{ name: 'abcdefghij/abcdefghij/abcdefghi', data: Buffer.from('x') }]);
    expect(await refused(long, { maxPathLength: 30 })).toEqual([
      {
        path: 'source/abcdefghij/abcdefghij/abcdefghi',
        message: 'the path is 31 bytes long, over the limit of 30; shorten it',
      },
    ]);
  });
});

describe('extractArchive: links and special files', () => {
  it('refuses symbolic links that leave the root: absolute, by .., or through another link', async () => {
    // GIVEN a tar.gz with a link to /etc/passwd, one climbing out, and a chain that is lexically inside
    const bytes = await buildTar([
      { name: 'passwd', type: 'symlink', linkname: '/etc/passwd' },
      { name: 'sub/up', type: 'symlink', linkname: '../../outside' },
      { name: 'here', type: 'symlink', linkname: '.' },
      { name: 'sneaky', type: 'symlink', linkname: 'here/../etc' },
      { name: 'fine', type: 'symlink', linkname: 'sub/../README' },
    ]);
    // WHEN extracted THEN all three escapes are refused, and the chain only once the archive is known
    expect(await refused(bytes)).toEqual([
      {
        path: 'source/passwd',
        message:
          "the symbolic link points to the absolute path '/etc/passwd', outside the project; make it a relative link to a file inside the project",
      },
      {
        path: 'source/sub/up',
        message:
          "the symbolic link points to '../../outside', which resolves outside the project; make it point to a file inside the project",
      },
      {
        path: 'source/sneaky',
        message:
          "the symbolic link points to 'here/../etc', which leads outside the project through other links in the archive; make it point to a file inside the project",
      },
    ]);
  });

  it('refuses a zip symlink to /etc/passwd and a symlink loop', async () => {
    // GIVEN a zip whose link entries (mode 0120777) hold their targets as content
    const zip = buildZip([
      { name: 'passwd', mode: 0o120777, data: Buffer.from('/etc/passwd') },
      { name: 'loop-a', mode: 0o120777, data: Buffer.from('loop-b') },
      { name: 'loop-b', mode: 0o120777, data: Buffer.from('loop-a') },
    ]);
    // WHEN extracted THEN both are refused
    expect(await refused(zip)).toEqual([
      {
        path: 'source/passwd',
        message:
          "the symbolic link points to the absolute path '/etc/passwd', outside the project; make it a relative link to a file inside the project",
      },
      {
        path: 'source/loop-a',
        message: 'the symbolic link is part of a loop or of a chain of more than 40 links; remove the loop',
      },
      {
        path: 'source/loop-b',
        message: 'the symbolic link is part of a loop or of a chain of more than 40 links; remove the loop',
      },
    ]);
  });

  it('refuses writing through a link created earlier in the same archive', async () => {
    // GIVEN a link to a directory inside, then a file below the link
    const bytes = await buildTar([
      { name: 'real', type: 'directory' },
      { name: 'lnk', type: 'symlink', linkname: 'real' },
      { name: 'lnk/x.txt', data: 'x' },
    ]);
    // WHEN extracted THEN the file is refused
    expect(await refused(bytes)).toEqual([
      {
        path: 'source/lnk/x.txt',
        message:
          "its parent 'lnk' is a symbolic link in the archive; entries are never written through links: re-create the archive without the link",
      },
    ]);
  });

  it('refuses hard links outside, to later files, and to directories', async () => {
    // GIVEN hard links to /etc/shadow, to a file that comes later, and to a directory
    const bytes = await buildTar([
      { name: 'shadow', type: 'link', linkname: '/etc/shadow' },
      { name: 'early', type: 'link', linkname: 'later.txt' },
      { name: 'later.txt', data: 'l' },
      { name: 'd', type: 'directory' },
      { name: 'to-dir', type: 'link', linkname: 'd' },
      { name: 'good', type: 'link', linkname: 'later.txt' },
    ]);
    // WHEN extracted THEN the three bad links are refused
    const tail = 're-create the archive without hard links (tar --hard-dereference)';
    expect(await refused(bytes)).toEqual([
      {
        path: 'source/shadow',
        message: `the hard link points to '/etc/shadow', outside the project; ${tail}`,
      },
      {
        path: 'source/early',
        message: `the hard link points to 'later.txt', which is not a regular file earlier in the archive; ${tail}`,
      },
      {
        path: 'source/to-dir',
        message: `the hard link points to 'd', which is not a regular file earlier in the archive; ${tail}`,
      },
    ]);
  });

  it('refuses device files and FIFOs in a tar, and sockets in a zip', async () => {
    // GIVEN a tar with /dev/null-like and disk-like devices and a FIFO, and a zip with a socket
    const bytes = await buildTar([
      { name: 'null', type: 'character-device', devmajor: 1, devminor: 3 },
      { name: 'sda', type: 'block-device', devmajor: 8, devminor: 0 },
      { name: 'pipe', type: 'fifo' },
    ]);
    // WHEN extracted THEN each is refused by kind
    expect(await refused(bytes)).toEqual([
      {
        path: 'source/null',
        message: `the entry is a character device; ${NOT_ACCEPTED}`,
      },
      {
        path: 'source/sda',
        message: `the entry is a block device; ${NOT_ACCEPTED}`,
      },
      { path: 'source/pipe', message: `the entry is a FIFO; ${NOT_ACCEPTED}` },
    ]);
    expect(await refused(buildZip([{ name: 'sock', mode: 0o140755 }]))).toEqual([
      {
        path: 'source/sock',
        message: `the entry is a socket; ${NOT_ACCEPTED}`,
      },
    ]);
  });
});

describe('extractArchive: duplicates and clashes', () => {
  it('refuses the same path twice, also once normalised, and file-versus-directory clashes', async () => {
    // GIVEN a zip with an exact duplicate, a duplicate through ./ and \, and both clash orders
    const zip = buildZip([
      { name: 'a.txt', data: Buffer.from('1') },
      { name: 'a.txt', data: Buffer.from('2') },
      { name: 'dir\\b.txt', data: Buffer.from('1') },
      { name: './dir//b.txt', data: Buffer.from('2') },
      { name: 'f', data: Buffer.from('file') },
      { name: 'f/inside.txt', data: Buffer.from('x') },
      { name: 'g/inside.txt', data: Buffer.from('x') },
      { name: 'g', data: Buffer.from('file') },
      { name: 'h/', mode: 0o040755 },
      { name: 'h', data: Buffer.from('file') },
    ]);
    // WHEN extracted THEN every clash is listed
    expect(await refused(zip)).toEqual([
      { path: 'source/a.txt', message: DUPLICATE },
      { path: 'source/./dir//b.txt', message: DUPLICATE },
      {
        path: 'source/f/inside.txt',
        message: "its parent 'f' is a file in the archive, not a directory; re-create the archive",
      },
      { path: 'source/g', message: FILE_AND_DIR },
      { path: 'source/h', message: FILE_AND_DIR },
    ]);
  });
});

describe('extractArchive: malformed zips', () => {
  it('refuses encrypted entries, unsupported compression and lying local headers', async () => {
    // GIVEN entries flagged as encrypted, compressed with bzip2 (12), and with another name in the local header
    const zip = buildZip([
      { name: 'secret.txt', data: Buffer.from('x'), flags: 0x801 },
      { name: 'bz.txt', data: Buffer.from('x'), method: 12 },
      {
        name: 'innocent.txt',
        localName: '../evil.txt',
        data: Buffer.from('x'),
      },
    ]);
    // WHEN extracted THEN each is refused
    expect(await refused(zip)).toEqual([
      {
        path: 'source/secret.txt',
        message: 'the entry is encrypted; upload an archive without a password',
      },
      {
        path: 'source/bz.txt',
        message:
          'the entry uses compression method 12, which is not supported; re-create the archive with deflate (the default of zip tools)',
      },
      {
        path: 'source/innocent.txt',
        message:
          "the entry's local header names '../evil.txt', not the name in the central directory; the archive is malformed: re-create it with a standard zip tool",
      },
    ]);
  });

  it('refuses an entry whose data fails its CRC, and a truncated tar.gz', async () => {
    // GIVEN a zip entry with a wrong CRC-32
    const zip = buildZip([{ name: 'bad.txt', data: Buffer.from('hello'), crc: 1234 }]);
    // WHEN extracted THEN the archive is called corrupt, naming the entry
    expect(await refused(zip)).toEqual([
      {
        path: 'source/bad.txt',
        message: 'the archive is corrupt or truncated (CRC-32 mismatch); re-create it and upload again',
      },
    ]);
    // AND GIVEN a tar.gz cut in the middle of its content WHEN extracted THEN it is corrupt
    const whole = await buildTar([
      {
        name: 'data.bin',
        data: Buffer.from(Array.from({ length: 20_000 }, (_, i) => (i * 31) % 256)),
      },
    ]);
    const issues = await refused(whole.subarray(0, Math.floor(whole.length / 2)));
    expect(issues.map((i) => i.path)).toEqual(['source/data.bin']);
    expect(issues[0]?.message).toMatch(/^the archive is corrupt or truncated \(.+\); re-create it and upload again$/);
  });
});

describe('extractArchive: many problems', () => {
  it('lists the first 100 problems, then says there are more', async () => {
    // GIVEN 150 zip-slip entries
    const zip = buildZip(
      Array.from({ length: 150 }, (_, i) => ({
        name: `../evil-${i}`,
        data: Buffer.from('x'),
      })),
    );
    // WHEN extracted
    const issues = await refused(zip);
    // THEN 100 are listed and one more says the rest were left out
    expect(issues).toHaveLength(101);
    expect(issues[99]).toEqual({
      path: 'source/../evil-99',
      message: ZIP_SLIP,
    });
    expect(issues[100]).toEqual({
      path: 'source',
      message: 'more than 100 problems were found; fix the ones listed and upload again',
    });
  });
});
