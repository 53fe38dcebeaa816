import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import {
  applyLayer,
  countBaseLayers,
  neededBasePaths,
  normalizeLayerPath,
  parseEnvManifest,
  planOverlay,
  symlinkStaysInProject,
  type BaseEntry,
  type LayerEntry,
} from '../../src/overlay/plan.js';
import type { ImageConfig } from '../../src/registry/types.js';

const hex = (s: string) => createHash('sha256').update(s).digest('hex');
const cfg = (...ids: string[]): ImageConfig => ({ rootfs: { type: 'layers', diff_ids: ids } });
const dir = (path: string, over: Partial<LayerEntry> = {}): LayerEntry => ({
  path,
  type: 'dir',
  mode: 0o755,
  uid: 0,
  gid: 0,
  size: 0,
  ...over,
});
const file = (path: string, text: string, over: Partial<LayerEntry> = {}): LayerEntry => ({
  path,
  type: 'file',
  mode: 0o644,
  uid: 0,
  gid: 0,
  size: text.length,
  content: Buffer.from(text),
  ...over,
});
const marker = (path: string): LayerEntry => file(path, '');
const baseFile = (path: string, text: string, over: Partial<BaseEntry> = {}): [string, BaseEntry] => [
  path,
  { path, type: 'file', mode: 0o644, uid: 0, gid: 0, size: text.length, sha256: hex(text), ...over },
];

describe('countBaseLayers', () => {
  it('accepts a prefix and names the first differing layer otherwise', () => {
    // GIVEN base and image diff_ids WHEN compared THEN the base layer count, or an InputError
    expect(countBaseLayers(cfg('a', 'b'), cfg('a', 'b', 'c'))).toBe(2);
    expect(countBaseLayers(cfg('a'), cfg('a'))).toBe(1);
    expect(() => countBaseLayers(cfg('a', 'x'), cfg('a', 'b', 'c'))).toThrow(
      'the image is not built on this base: layer 1 differs (base x, image b)\n  - image.rootfs.diff_ids[1]: is b, the base has x',
    );
  });
});

describe('normalizeLayerPath', () => {
  it('strips ./ and slashes and refuses to climb above the root', () => {
    expect(normalizeLayerPath('./project/app/')).toBe('project/app');
    expect(normalizeLayerPath('/a/./b/../c')).toBe('a/c');
    expect(normalizeLayerPath('./')).toBe('');
    expect(normalizeLayerPath('a/../../etc')).toBeUndefined();
  });
});

describe('applyLayer', () => {
  it('applies whiteouts to lower layers only, before the layer own entries', () => {
    // GIVEN a state with a/x and d/y, and a layer that whites out a/x, makes d opaque and re-adds d/z
    const state = new Map<string, LayerEntry>([
      ['a/x', file('a/x', '1')],
      ['d/y', file('d/y', '2')],
    ]);
    // WHEN applied
    const r = applyLayer(state, [marker('a/.wh.x'), file('a/x', 'again'), marker('d/.wh..wh..opq'), file('d/z', '3')]);
    // THEN the layer's own a/x and d/z survive, d/y is gone
    expect([...state.keys()].sort()).toEqual(['a/x', 'd/z']);
    expect(Buffer.from(state.get('a/x')?.content ?? []).toString()).toBe('again');
    expect(r).toEqual({ whiteouts: ['a/x'], opaques: ['d'] });
  });
});

describe('planOverlay', () => {
  it('accepts a base file deleted then put back identical, and parent dirs equal to the base', () => {
    // GIVEN etc/hosts whited out in one layer and restored identical in the next
    const base = new Map<string, BaseEntry>([
      baseFile('etc/hosts', 'h\n'),
      ['etc', { path: 'etc', type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0 }],
    ]);
    const layers = [
      [dir('etc'), marker('etc/.wh.hosts')],
      [dir('etc'), file('etc/hosts', 'h\n', { content: undefined, sha256: hex('h\n') })],
    ];
    // WHEN planned THEN nothing is a violation and the overlay is empty
    expect(planOverlay({ layers, base })).toEqual({ entries: [], violations: [] });
    expect(neededBasePaths(layers)).toEqual({ paths: new Set(['etc', 'etc/hosts']), prefixes: new Set(['etc/hosts']) });
  });

  it('flags what an overlay cannot carry, and type and ownership changes outside /project', () => {
    // GIVEN /project chowned (not compared: see planOverlay), a hard link to a base file, a device under /project, a base
    // dir replaced by a file, a base file chowned
    const base = new Map<string, BaseEntry>([
      ['project', { path: 'project', type: 'dir', mode: 0o755, uid: 1000, gid: 1000, size: 0 }],
      ['srv', { path: 'srv', type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0 }],
      baseFile('etc/os-release', 'debian\n'),
    ]);
    const layers = [
      [
        dir('project', { uid: 0, gid: 0 }),
        { path: 'project/hard', type: 'hardlink', mode: 0o644, uid: 0, gid: 0, size: 0, linkname: 'etc/os-release' } as LayerEntry,
        { path: 'project/dev', type: 'other', mode: 0o644, uid: 0, gid: 0, size: 0 } as LayerEntry,
        file('srv', 'now a file'),
        file('etc/os-release', 'debian\n', { uid: 1000 }),
      ],
    ];
    // WHEN planned THEN each is listed
    expect(planOverlay({ layers, base }).violations).toEqual([
      { path: '/etc/os-release', kind: 'metadata', message: 'uid 0 -> 1000' },
      { path: '/project/dev', kind: 'unsupported', message: 'device, fifo or socket: not allowed in the overlay' },
      { path: '/project/hard', kind: 'unsupported', message: 'hard link to /etc/os-release, which is not a file added under /project' },
      { path: '/srv', kind: 'modified', message: 'base dir replaced by a file' },
    ]);
  });

  it('checks entries under an env root against its manifest', () => {
    // GIVEN a manifest and a layer re-writing a listed file with another mode and a link with another target
    const manifest = parseEnvManifest(`f ${hex('a\n')}:644 a.py\nl ../x lnk\nd - sub\n`, '/home/user/the_venv');
    const base = new Map<string, BaseEntry>([
      baseFile('home/user/the_venv/a.py', 'a\n', { mode: 0o755 }),
      [
        'home/user/the_venv/lnk',
        { path: 'home/user/the_venv/lnk', type: 'symlink', mode: 0o777, uid: 0, gid: 0, size: 0, linkname: '../y' },
      ],
    ]);
    const layers = [
      [
        file('home/user/the_venv/a.py', 'a\n', { mode: 0o755 }),
        { path: 'home/user/the_venv/lnk', type: 'symlink', mode: 0o777, uid: 0, gid: 0, size: 0, linkname: '../y' } as LayerEntry,
      ],
    ];
    // WHEN planned THEN the base comparison finds nothing but the manifest finds both
    expect(planOverlay({ layers, base, envManifests: [manifest] }).violations).toEqual([
      { path: '/home/user/the_venv/a.py', kind: 'manifest', message: 'differs from the base manifest of /home/user/the_venv' },
      { path: '/home/user/the_venv/lnk', kind: 'manifest', message: 'differs from the base manifest of /home/user/the_venv' },
    ]);
  });
});

describe('parseEnvManifest', () => {
  it('reports every bad line with its number', () => {
    // GIVEN a manifest with two bad lines WHEN parsed THEN one InputError lists both
    let err: unknown;
    try {
      parseEnvManifest(`d - ok\nf nothex:644 a\nx - b\n`, '/v');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).issues).toEqual([
      { path: '/v.sha256:2', message: 'expected <sha256>:<octal mode>, got "nothex:644"' },
      { path: '/v.sha256:3', message: 'unknown kind "x" (expected f, l or d)' },
    ]);
  });
});

describe('symlinkStaysInProject', () => {
  it('resolves lexically against the link directory', () => {
    expect(symlinkStaysInProject('project/bin/run', '../app/run.sh')).toBe(true);
    expect(symlinkStaysInProject('project/bin/run', '/project/app')).toBe(true);
    expect(symlinkStaysInProject('project/a', '.')).toBe(true);
    expect(symlinkStaysInProject('project/a', '..')).toBe(false);
    expect(symlinkStaysInProject('project/a', '../projectx/b')).toBe(false);
    expect(symlinkStaysInProject('project/a/b', '../../../../project/c')).toBe(true);
    expect(symlinkStaysInProject('project/a', '/usr/bin/python3')).toBe(false);
  });
});
