import { execFileSync } from 'node:child_process';
import { lstat, mkdtemp, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import type { OverlayEntry } from '../../src/overlay/plan.js';
import { encodeZip, zipPathProblem } from '../../src/overlay/zip.js';

const ENTRIES: OverlayEntry[] = [
  { path: 'the_venv/lib/pkg/__init__.py', type: 'file', mode: 0o644, content: Buffer.from('x = 1\n'.repeat(200)) },
  { path: 'app', type: 'dir', mode: 0o750 },
  { path: 'app/run.sh', type: 'file', mode: 0o755, content: Buffer.from('#!/bin/sh\necho hi\n') },
  { path: 'app/empty', type: 'file', mode: 0o600, content: new Uint8Array() },
  { path: 'app/données.txt', type: 'file', mode: 0o644, content: Buffer.from('é\n') },
  { path: 'bin/run', type: 'symlink', mode: 0o777, linkname: '../app/run.sh' },
  { path: 'the_venv', type: 'dir', mode: 0o755 },
];

describe('encodeZip', () => {
  let work: string;
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'svcbuild-zip-test-'));
  });
  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('gives the same bytes for the same entries, whatever their order', () => {
    // GIVEN the same entries in two orders WHEN encoded THEN the bytes are identical
    const a = encodeZip(ENTRIES);
    const b = encodeZip([...ENTRIES].reverse());
    expect(a.equals(b)).toBe(true);
    // AND an empty overlay is the 22-byte empty archive
    expect(encodeZip([]).toString('hex')).toBe('504b0506' + '00'.repeat(18));
  });

  it('is read by Info-ZIP: sorted entries, Unix modes, 1980-01-01, symlinks restored', async () => {
    // GIVEN the zip on disk
    const file = join(work, 'o.zip');
    await writeFile(file, encodeZip(ENTRIES));
    // WHEN listed THEN entries are sorted by path with their Unix modes and the fixed date
    const lines = execFileSync('unzip', ['-Z', file], { encoding: 'utf8' }).trim().split('\n').slice(2, -1);
    expect(
      lines.map((l) => {
        const f = l.split(/\s+/);
        return [f[0], f[2], f[6], f[7], f.slice(8).join(' ')];
      }),
    ).toEqual([
      ['drwxr-x---', 'unx', '80-Jan-01', '00:00', 'app/'],
      ['-rw-r--r--', 'unx', '80-Jan-01', '00:00', 'app/données.txt'],
      ['-rw-------', 'unx', '80-Jan-01', '00:00', 'app/empty'],
      ['-rwxr-xr-x', 'unx', '80-Jan-01', '00:00', 'app/run.sh'],
      ['lrwxrwxrwx', 'unx', '80-Jan-01', '00:00', 'bin/run'],
      ['drwxr-xr-x', 'unx', '80-Jan-01', '00:00', 'the_venv/'],
      ['-rw-r--r--', 'unx', '80-Jan-01', '00:00', 'the_venv/lib/pkg/__init__.py'],
    ]);
    // AND the integrity test passes (CRCs and sizes)
    expect(execFileSync('unzip', ['-tq', file], { encoding: 'utf8' })).toBe(`No errors detected in compressed data of ${file}.\n`);
    // WHEN extracted THEN contents, modes and the symlink come back
    const out = join(work, 'x');
    execFileSync('unzip', ['-q', file, '-d', out]);
    expect(await readFile(join(out, 'the_venv/lib/pkg/__init__.py'), 'utf8')).toBe('x = 1\n'.repeat(200));
    expect(await readFile(join(out, 'app/données.txt'), 'utf8')).toBe('é\n');
    expect((await lstat(join(out, 'app/run.sh'))).mode & 0o7777).toBe(0o755);
    expect((await lstat(join(out, 'app/empty'))).mode & 0o7777).toBe(0o600);
    expect((await lstat(join(out, 'app'))).mode & 0o7777).toBe(0o750);
    expect((await lstat(join(out, 'bin/run'))).isSymbolicLink()).toBe(true);
    expect(await readlink(join(out, 'bin/run'))).toBe('../app/run.sh');
  });

  it('rejects unsafe and duplicate paths, listing every one', () => {
    // GIVEN paths with .., absolute, backslash, empty component and a duplicate
    const bad: OverlayEntry[] = [
      { path: '../evil', type: 'file', mode: 0o644 },
      { path: '/abs', type: 'file', mode: 0o644 },
      { path: 'a\\b', type: 'file', mode: 0o644 },
      { path: 'a//b', type: 'dir', mode: 0o755 },
      { path: 'ok', type: 'file', mode: 0o644 },
      { path: 'ok', type: 'file', mode: 0o644 },
    ];
    // WHEN encoded THEN one InputError lists them all
    let err: unknown;
    try {
      encodeZip(bad);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).issues).toEqual([
      { path: '../evil', message: '".." path component' },
      { path: '/abs', message: 'absolute path' },
      { path: 'a\\b', message: 'backslash in path' },
      { path: 'a//b', message: 'empty path component' },
      { path: 'ok', message: 'duplicate entry' },
    ]);
    expect(zipPathProblem('a/./b')).toBe('"." path component');
    expect(zipPathProblem('a/b')).toBeUndefined();
  });
});
