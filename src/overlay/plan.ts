/**
 * The overlay planner. PURE: no I/O. Given the tar entries of an image's layers above its
 * base image and what the base holds at the paths those layers touch, it computes the final
 * state of the layers (whiteouts and opaque directories applied), the overlay entries (all
 * of `/project`, relative to it) and every immutability violation outside `/project`.
 *
 * Rules, in short:
 * - Everything under `/project` goes into the overlay. A symlink is kept only when its target
 *   resolves (lexically) inside `/project`; one that escapes is a VIOLATION, not silently
 *   dropped, because a dropped link would make the overlay differ from the installation.
 *   A hard link inside `/project` is stored as a copy of its target's content.
 * - Outside `/project` nothing may change: an entry that does not exist in the base (added),
 *   a file whose content, type or link target differs (modified), a mode/uid/gid change
 *   (metadata) and a base path removed by a whiteout or an opaque directory (deleted) are
 *   violations. Entries equal to the base in type, mode, uid, gid and content are not: layers
 *   always carry parent directories, whose mtimes differ.
 * - An optional env manifest (the base image's `the_venv.sha256`) is checked too: every entry
 *   under its root must match it, and none of its entries may be deleted.
 */
import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import { InputError } from '../errors.js';
import type { ImageConfig } from '../registry/types.js';

/** Tar entry types the planner knows; `other` is a device, fifo or anything else. */
export type EntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'other';

/** One tar entry of a layer, path normalized by `normalizeLayerPath`. */
export interface LayerEntry {
  /** Relative to the image root, no leading `/` or `./`, no trailing `/`; `''` is the root. */
  path: string;
  type: EntryType;
  /** Permission bits (`mode & 0o7777`). */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Symlink target as written, or hard link target path (normalized). */
  linkname?: string;
  /** File bytes; the shell loads them for files under `/project`. */
  content?: Uint8Array;
  /** Hex sha256 of a file's bytes; the shell computes it for files outside `/project`. */
  sha256?: string;
}

/** What the base image holds at a path (its final state across its layers). */
export type BaseEntry = Omit<LayerEntry, 'content'>;

/** One file of the overlay zip, relative to `/project`. */
export interface OverlayEntry {
  path: string;
  type: 'file' | 'dir' | 'symlink';
  mode: number;
  content?: Uint8Array;
  linkname?: string;
}

export type ViolationKind = 'added' | 'modified' | 'deleted' | 'metadata' | 'symlink-escape' | 'unsupported' | 'manifest';

/** One immutability problem, with the absolute path it concerns. */
export interface Violation {
  path: string;
  kind: ViolationKind;
  message: string;
}

/** A base environment's record of its files (see base-images/python/svcbuild-python.py). */
export interface EnvManifest {
  /** Absolute root, e.g. `/home/user/the_venv`. */
  root: string;
  entries: Map<string, EnvManifestEntry>;
}

export type EnvManifestEntry = { kind: 'f'; sha256: string; mode: number } | { kind: 'l'; target: string } | { kind: 'd' };

/** Which base paths the planner needs to know: exact paths, and whole subtrees. */
export interface BaseQuery {
  paths: Set<string>;
  prefixes: Set<string>;
}

export interface PlanInput {
  /** Entries of each layer above the base, lowest first, each in tar order. */
  layers: LayerEntry[][];
  /** The base's final state at (at least) the paths of `neededBasePaths(layers)`. */
  base: Map<string, BaseEntry>;
  envManifests?: EnvManifest[];
}

export interface OverlayPlan {
  /** Sorted by path. */
  entries: OverlayEntry[];
  /** Sorted by path, then kind. */
  violations: Violation[];
}

export const PROJECT = 'project';
const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';

/**
 * How many layers of the image are the base's: the base's `rootfs.diff_ids` must be a prefix
 * of the image's, else the image was not built on this base.
 */
export function countBaseLayers(baseConfig: ImageConfig, imageConfig: ImageConfig): number {
  const base = baseConfig.rootfs?.diff_ids ?? [];
  const image = imageConfig.rootfs?.diff_ids ?? [];
  if (base.length > image.length) {
    throw new InputError(`the image is not built on this base: the base has ${base.length} layers, the image only ${image.length}`, [
      { path: 'base', message: `has more layers (${base.length}) than the image (${image.length})` },
    ]);
  }
  for (let i = 0; i < base.length; i++) {
    if (base[i] !== image[i]) {
      throw new InputError(`the image is not built on this base: layer ${i} differs (base ${base[i]}, image ${image[i]})`, [
        { path: `image.rootfs.diff_ids[${i}]`, message: `is ${image[i]}, the base has ${base[i]}` },
      ]);
    }
  }
  return base.length;
}

/**
 * Normalizes a tar path: strips `./` and `/` prefixes and trailing `/`, resolves `.` and
 * `..`; returns undefined for a path that climbs above the root.
 */
export function normalizeLayerPath(p: string): string | undefined {
  const parts: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (parts.length === 0) return undefined;
      parts.pop();
    } else parts.push(seg);
  }
  return parts.join('/');
}

function isUnder(path: string, dir: string): boolean {
  return dir === '' ? path !== '' : path.startsWith(dir + '/');
}

function inProject(path: string): boolean {
  return path === PROJECT || path.startsWith(PROJECT + '/');
}

function whiteoutTarget(path: string): { kind: 'opaque' | 'whiteout'; target: string } | undefined {
  const slash = path.lastIndexOf('/');
  const dir = slash >= 0 ? path.slice(0, slash) : '';
  const name = path.slice(slash + 1);
  if (name === OPAQUE) return { kind: 'opaque', target: dir };
  if (name.startsWith(WHITEOUT))
    return { kind: 'whiteout', target: dir ? `${dir}/${name.slice(WHITEOUT.length)}` : name.slice(WHITEOUT.length) };
  return undefined;
}

/**
 * The base paths `planOverlay` needs: every path the layers touch outside `/project`, every
 * whiteout target (with its subtree) and every opaque directory's subtree. An image whose
 * layers only touch `/project` needs nothing from the base.
 */
export function neededBasePaths(layers: LayerEntry[][]): BaseQuery {
  const q: BaseQuery = { paths: new Set(), prefixes: new Set() };
  for (const layer of layers) {
    for (const e of layer) {
      const w = whiteoutTarget(e.path);
      if (w) {
        q.paths.add(w.target);
        q.prefixes.add(w.target);
      } else if (!inProject(e.path)) {
        q.paths.add(e.path);
        if (e.type === 'hardlink' && e.linkname !== undefined) q.paths.add(e.linkname);
      }
    }
  }
  return q;
}

/** True when the base query asks for `path`. */
export function queryWants(q: BaseQuery, path: string): boolean {
  if (q.paths.has(path)) return true;
  for (const p of q.prefixes) if (isUnder(path, p)) return true;
  return false;
}

/** What one layer removed: whiteout targets and opaque directories. */
export interface LayerRemovals {
  whiteouts: string[];
  opaques: string[];
}

/**
 * Applies one layer to a state (path -> entry), in OCI order: its whiteouts and opaque
 * markers hide lower layers' entries first, then its entries are added. A hard link is
 * resolved to its target's current state (when the state holds the target). With `keep`,
 * only the entries it accepts are stored (the base is only kept at the paths needed).
 */
export function applyLayer<E extends BaseEntry>(state: Map<string, E>, layer: E[], keep?: (path: string) => boolean): LayerRemovals {
  const removals: LayerRemovals = { whiteouts: [], opaques: [] };
  const regular: E[] = [];
  for (const e of layer) {
    const w = whiteoutTarget(e.path);
    if (!w) regular.push(e);
    else if (w.kind === 'opaque') removals.opaques.push(w.target);
    else removals.whiteouts.push(w.target);
  }
  if (removals.opaques.length || removals.whiteouts.length) {
    for (const key of [...state.keys()]) {
      if (removals.opaques.some((d) => isUnder(key, d)) || removals.whiteouts.some((w) => key === w || isUnder(key, w))) state.delete(key);
    }
  }
  for (const e of regular) {
    if (e.path === '' && e.type === 'dir') continue; // the root directory itself
    if (keep && !keep(e.path)) continue;
    const prev = state.get(e.path);
    if (prev && prev.type === 'dir' && e.type !== 'dir') {
      for (const key of [...state.keys()]) if (isUnder(key, e.path)) state.delete(key);
    }
    if (e.type === 'hardlink' && e.linkname !== undefined) {
      const target = state.get(e.linkname);
      if (target && target.type === 'file') {
        state.set(e.path, { ...target, path: e.path });
        continue;
      }
    }
    state.set(e.path, e);
  }
  return removals;
}

/** Parses an env manifest: lines `f <sha256>:<octal mode> <rel>`, `l <target> <rel>`, `d - <rel>`. */
export function parseEnvManifest(text: string, root: string): EnvManifest {
  const entries = new Map<string, EnvManifestEntry>();
  const issues: { path: string; message: string }[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    const a = line.indexOf(' ');
    const b = a < 0 ? -1 : line.indexOf(' ', a + 1);
    const kind = line.slice(0, a);
    const field = line.slice(a + 1, b);
    const rel = line.slice(b + 1);
    if (a < 0 || b < 0 || rel === '') {
      issues.push({ path: `${root}.sha256:${i + 1}`, message: `expected "<kind> <digest> <path>", got "${line}"` });
      return;
    }
    if (kind === 'f') {
      const m = /^([0-9a-f]{64}):([0-7]+)$/.exec(field);
      if (!m) issues.push({ path: `${root}.sha256:${i + 1}`, message: `expected <sha256>:<octal mode>, got "${field}"` });
      else entries.set(rel, { kind: 'f', sha256: m[1] as string, mode: parseInt(m[2] as string, 8) });
    } else if (kind === 'l') entries.set(rel, { kind: 'l', target: field });
    else if (kind === 'd') entries.set(rel, { kind: 'd' });
    else issues.push({ path: `${root}.sha256:${i + 1}`, message: `unknown kind "${kind}" (expected f, l or d)` });
  });
  if (issues.length) throw new InputError(`invalid env manifest for ${root}`, issues);
  return { root, entries };
}

function sha256Of(e: LayerEntry): string | undefined {
  if (e.sha256) return e.sha256;
  if (e.content) return createHash('sha256').update(e.content).digest('hex');
  return undefined;
}

const octal = (n: number): string => n.toString(8).padStart(4, '0');

/** Whether a symlink at `path` (relative to the root) pointing to `target` stays in /project. */
export function symlinkStaysInProject(path: string, target: string): boolean {
  const resolved = target.startsWith('/') ? posix.normalize(target) : posix.normalize(posix.join('/', posix.dirname(path), target));
  return resolved === `/${PROJECT}` || resolved.startsWith(`/${PROJECT}/`);
}

/** Compares a layer entry with the base entry at its path; returns the differences. */
function compareWithBase(e: LayerEntry, b: BaseEntry): { kind: ViolationKind; message: string }[] {
  const out: { kind: ViolationKind; message: string }[] = [];
  if (e.type !== b.type) {
    out.push({ kind: 'modified', message: `base ${b.type} replaced by a ${e.type}` });
    return out;
  }
  if (e.type === 'file') {
    const a = sha256Of(e);
    if (a === undefined || b.sha256 === undefined || a !== b.sha256) out.push({ kind: 'modified', message: 'base file content changed' });
  } else if (e.type === 'symlink' && e.linkname !== b.linkname) {
    out.push({ kind: 'modified', message: `base symlink target changed from ${b.linkname} to ${e.linkname}` });
  } else if (e.type === 'hardlink' || e.type === 'other') {
    out.push({ kind: 'modified', message: `base ${e.type} rewritten` });
  }
  const meta: string[] = [];
  if (e.mode !== b.mode) meta.push(`mode ${octal(b.mode)} -> ${octal(e.mode)}`);
  if (e.uid !== b.uid) meta.push(`uid ${b.uid} -> ${e.uid}`);
  if (e.gid !== b.gid) meta.push(`gid ${b.gid} -> ${e.gid}`);
  if (meta.length) out.push({ kind: 'metadata', message: meta.join(', ') });
  return out;
}

/**
 * Plans the overlay: final state of the layers above the base, overlay entries under
 * `/project` and every violation. Throws nothing for violations: the shell decides.
 */
export function planOverlay(input: PlanInput): OverlayPlan {
  const state = new Map<string, LayerEntry>();
  const whiteouts = new Set<string>();
  const opaques = new Set<string>();
  for (const layer of input.layers) {
    const r = applyLayer(state, layer);
    r.whiteouts.forEach((w) => whiteouts.add(w));
    r.opaques.forEach((d) => opaques.add(d));
  }
  const violations: Violation[] = [];
  const add = (path: string, kind: ViolationKind, message: string) => violations.push({ path: `/${path}`, kind, message });
  const hidden = (path: string): boolean => {
    if (state.has(path)) return false;
    for (const w of whiteouts) if (path === w || isUnder(path, w)) return true;
    for (const d of opaques) if (isUnder(path, d)) return true;
    return false;
  };

  // Base paths removed by a whiteout or an opaque directory and not put back.
  if (whiteouts.size || opaques.size) {
    for (const path of input.base.keys()) {
      if (hidden(path))
        add(path, 'deleted', inProject(path) ? 'base file under /project deleted (an overlay cannot delete)' : 'base file deleted');
    }
  }

  const entries: OverlayEntry[] = [];
  for (const [path, e] of state) {
    const base = input.base.get(path);
    if (path === PROJECT) {
      // The overlay root's own mode and owner are not compared with the base: every layer
      // carries /project, so comparing would force reading the base layers for every image.
      if (e.type !== 'dir') add(path, 'modified', `/project replaced by a ${e.type}`);
      continue;
    }
    if (inProject(path)) {
      const rel = path.slice(PROJECT.length + 1);
      if (e.type === 'dir') entries.push({ path: rel, type: 'dir', mode: e.mode });
      else if (e.type === 'file') entries.push({ path: rel, type: 'file', mode: e.mode, content: e.content ?? new Uint8Array() });
      else if (e.type === 'symlink') {
        const target = e.linkname ?? '';
        if (symlinkStaysInProject(path, target)) entries.push({ path: rel, type: 'symlink', mode: 0o777, linkname: target });
        else add(path, 'symlink-escape', `symlink to ${target} leaves /project`);
      } else if (e.type === 'hardlink')
        add(path, 'unsupported', `hard link to /${e.linkname ?? '?'}, which is not a file added under /project`);
      else add(path, 'unsupported', 'device, fifo or socket: not allowed in the overlay');
      continue;
    }
    if (!base) add(path, 'added', `${e.type === 'dir' ? 'directory' : e.type} added outside /project`);
    else for (const d of compareWithBase(e, base)) add(path, d.kind, d.message);
  }

  for (const m of input.envManifests ?? []) {
    const root = normalizeLayerPath(m.root) ?? '';
    for (const [path, e] of state) {
      if (!isUnder(path, root)) continue;
      const rel = path.slice(root.length + 1);
      const want = m.entries.get(rel);
      if (!want) {
        add(path, 'manifest', `not in the base manifest of ${m.root}: new files belong under /project`);
        continue;
      }
      let ok: boolean;
      if (want.kind === 'f') ok = e.type === 'file' && sha256Of(e) === want.sha256 && e.mode === want.mode;
      else if (want.kind === 'l') ok = e.type === 'symlink' && e.linkname === want.target;
      else ok = e.type === 'dir';
      if (!ok) add(path, 'manifest', `differs from the base manifest of ${m.root}`);
    }
    if (whiteouts.size || opaques.size) {
      for (const rel of m.entries.keys()) {
        const path = root ? `${root}/${rel}` : rel;
        if (hidden(path)) add(path, 'manifest', `listed in the base manifest of ${m.root} but deleted`);
      }
    }
  }

  entries.sort((a, b) => compareBytes(a.path, b.path));
  violations.sort((a, b) => compareBytes(a.path, b.path) || compareBytes(a.kind, b.kind) || compareBytes(a.message, b.message));
  return { entries, violations };
}

/** Byte-order comparison of strings (locale-independent, so the order is stable everywhere). */
export function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** One line per violation, for error messages. */
export function formatViolations(violations: Violation[]): string {
  return violations.map((v) => `  ${v.path}: ${v.kind}: ${v.message}`).join('\n');
}
