/**
 * The project as the source and context steps see it: its optional svcbuild.yaml, and the
 * deterministic tar.gz the source step pushes (same files, same bytes, same digest).
 */
import { lstat, readFile, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { createGzip } from 'node:zlib';
import tar, { type Header } from 'tar-stream';
import { parse as parseYaml } from 'yaml';
import { PROJECT_CONFIG_FILES, ProjectConfigSchema, type ProjectConfig } from '../domain/project-config.js';
import { InputError } from '../errors.js';
import type { Project } from '../providers/project.js';

/** The project's svcbuild.yaml (or .yml, .json), checked; `{}` when it has none. */
export async function readProjectConfig(project: Project): Promise<ProjectConfig> {
  const file = PROJECT_CONFIG_FILES.find((f) => project.has(f));
  if (!file) return {};
  let raw: unknown;
  try {
    raw = parseYaml(await project.readText(file));
  } catch (e) {
    throw new InputError(`${file} is not valid YAML`, [{ path: file, message: (e as Error).message.split('\n')[0] ?? 'parse error' }]);
  }
  const res = ProjectConfigSchema.safeParse(raw ?? {});
  if (!res.success) {
    throw new InputError(
      `${file} is invalid`,
      res.error.issues.map((i) => ({ path: [file, ...i.path].join('.'), message: i.message })),
    );
  }
  return res.data;
}

/** Fixed header fields: the archive depends on the files only, not on who or when. */
const FIXED = { mtime: new Date(0), uid: 0, gid: 0, uname: '', gname: '' };

/**
 * Packs a staged project directory as a deterministic tar.gz: entries sorted, directories
 * 0755, files 0755 when executable else 0644, symlinks kept, fixed owner and time.
 */
export async function packProject(root: string): Promise<Buffer> {
  const pack = tar.pack();
  const gzip = createGzip({ level: 9 });
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    gzip.on('data', (c: Buffer) => chunks.push(c));
    gzip.on('end', () => resolve());
    gzip.on('error', reject);
    pack.on('error', reject);
  });
  pack.pipe(gzip);
  const add = (header: Partial<Header> & { name: string }, body?: Buffer) =>
    new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      if (body) pack.entry({ ...FIXED, ...header }, body, cb);
      else pack.entry({ ...FIXED, ...header }, cb);
    });
  const walk = async (rel: string): Promise<void> => {
    const names = (await readdir(rel ? join(root, rel) : root)).sort();
    for (const name of names) {
      const r = rel ? `${rel}/${name}` : name;
      const full = join(root, r);
      const st = await lstat(full);
      if (st.isDirectory()) {
        await add({ name: `${r}/`, type: 'directory', mode: 0o755 });
        await walk(r);
      } else if (st.isSymbolicLink()) {
        await add({ name: r, type: 'symlink', linkname: await readlink(full), mode: 0o777 });
      } else if (st.isFile()) {
        const body = await readFile(full);
        await add({ name: r, type: 'file', size: body.length, mode: st.mode & 0o111 ? 0o755 : 0o644 }, body);
      }
    }
  };
  await walk('');
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}
