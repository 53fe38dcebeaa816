/**
 * A project as the providers see it: a checked, staged copy of the user's directory. Staging
 * is the local form of the pipeline's source step: what could escape the build context or
 * surprise the builder (links leaving the root, device files, absolute paths) is refused.
 */
import { lstat, mkdir, readdir, readFile, readlink, copyFile, symlink, chmod } from 'node:fs/promises';
import { isAbsolute, join, normalize, posix, relative, resolve, dirname } from 'node:path';
import { InputError, type Issue } from '../errors.js';

/** Names never copied into the build: tool caches and installs the build recreates. */
export const IGNORED_NAMES = new Set(['.git', 'node_modules', '.venv', '__pycache__', '.svcbuild', '.mypy_cache', '.pytest_cache']);

export interface StageLimits {
  maxFiles: number;
  maxBytes: number;
}

export const DEFAULT_LIMITS: StageLimits = { maxFiles: 20_000, maxBytes: 512 * 1024 * 1024 };

export interface Project {
  /** The staged copy: the build context. */
  root: string;
  /** Every regular file and symlink, as POSIX paths relative to root, sorted. */
  files: string[];
  /** Relative paths of regular files with an executable bit. */
  executables: string[];
  has(path: string): boolean;
  readText(path: string): Promise<string>;
}

/** Copies `src` to `dest` (a new empty directory), checking each entry; returns the project. */
export async function stageProject(src: string, dest: string, limits: StageLimits = DEFAULT_LIMITS): Promise<Project> {
  const root = resolve(src);
  let st;
  try {
    st = await lstat(root);
  } catch {
    throw new InputError(`project directory ${src} does not exist`, [{ path: 'project', message: `no such directory: ${src}` }]);
  }
  if (!st.isDirectory())
    throw new InputError(`project ${src} is not a directory`, [
      { path: 'project', message: 'give the directory that holds pyproject.toml, package.json or the executable' },
    ]);
  const files: string[] = [];
  const executables: string[] = [];
  const issues: Issue[] = [];
  let bytes = 0;
  const walk = async (rel: string): Promise<void> => {
    const names = (await readdir(join(root, rel))).sort();
    await mkdir(join(dest, rel), { recursive: true });
    for (const name of names) {
      if (IGNORED_NAMES.has(name) || name.endsWith('.pyc')) continue;
      const r = rel ? `${rel}/${name}` : name;
      const full = join(root, r);
      const s = await lstat(full);
      if (s.isDirectory()) {
        await walk(r);
      } else if (s.isSymbolicLink()) {
        const target = await readlink(full);
        const resolved = normalize(join(dirname(full), target));
        if (isAbsolute(target) || relative(root, resolved).startsWith('..')) {
          issues.push({
            path: `project/${r}`,
            message: `symlink to ${target} points outside the project; copy the file in or remove the link`,
          });
          continue;
        }
        await symlink(target, join(dest, r));
        files.push(r);
      } else if (s.isFile()) {
        bytes += s.size;
        files.push(r);
        if (s.mode & 0o111) executables.push(r);
        await copyFile(full, join(dest, r));
        await chmod(join(dest, r), s.mode & 0o755);
      } else {
        issues.push({ path: `project/${r}`, message: 'not a regular file, directory or symlink (device, socket or pipe); remove it' });
      }
      if (files.length > limits.maxFiles) {
        throw new InputError(`the project has more than ${limits.maxFiles} files`, [
          { path: 'project', message: `at most ${limits.maxFiles} files; add build outputs and caches to IGNORED_NAMES or remove them` },
        ]);
      }
      if (bytes > limits.maxBytes) {
        throw new InputError(`the project is larger than ${limits.maxBytes} bytes`, [
          { path: 'project', message: 'remove large generated files' },
        ]);
      }
    }
  };
  await walk('');
  if (issues.length) throw new InputError(`the project at ${src} cannot be built`, issues);
  const set = new Set(files);
  return {
    root: dest,
    files,
    executables,
    has: (p) => set.has(posix.normalize(p)),
    readText: (p) => readFile(join(dest, p), 'utf8'),
  };
}
