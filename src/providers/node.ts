/**
 * Node projects: package.json. Dependencies the base image's /home/user/node_modules already
 * satisfies are reused (found through NODE_PATH); the rest are installed into
 * /project/app/node_modules, which Node searches first. The base's node_modules is verified
 * against its manifest afterwards.
 */
import semver from 'semver';
import { InputError, type Issue } from '../errors.js';
import type { ProjectConfig } from '../domain/project-config.js';
import type { BaseInfo, BuildPlan, Provider } from './provider.js';
import type { Project } from './project.js';

const ENTRY_CANDIDATES = ['server.js', 'index.js', 'app.js', 'main.js', 'server.mjs', 'index.mjs'];

export const nodeProvider: Provider = {
  kind: 'node',
  detect: (p: Project) => p.has('package.json'),
  async plan(project: Project, base: BaseInfo, config: ProjectConfig): Promise<BuildPlan> {
    if (!project.has('package.json')) {
      throw new InputError('this is not a Node project', [
        { path: 'package.json', message: 'missing: add a package.json listing your dependencies' },
      ]);
    }
    let pkg: Record<string, any>;
    try {
      pkg = JSON.parse(await project.readText('package.json')) as Record<string, any>;
    } catch (e) {
      throw new InputError('package.json is not valid JSON', [{ path: 'package.json', message: (e as Error).message }]);
    }
    const issues: Issue[] = [];
    if (!pkg || typeof pkg !== 'object' || Array.isArray(pkg)) {
      throw new InputError('package.json must hold an object', [
        { path: 'package.json', message: 'expected {"name": ..., "dependencies": {...}}' },
      ]);
    }
    const engines = pkg.engines?.node;
    const nodeVersion = base.languageVersion;
    if (engines !== undefined && nodeVersion) {
      const range = semver.validRange(String(engines));
      if (!range) {
        issues.push({ path: 'package.json:engines.node', message: `"${engines}" is not a semver range` });
      } else if (!semver.intersects(range, `${nodeVersion}.x`)) {
        issues.push({
          path: 'package.json:engines.node',
          message: `"${engines}" excludes Node.js ${nodeVersion} of base image ${base.name}; relax engines.node or choose another base with --base`,
        });
      }
    }
    for (const field of ['dependencies', 'optionalDependencies']) {
      const d = pkg[field];
      if (d !== undefined && (typeof d !== 'object' || Array.isArray(d) || Object.values(d).some((v) => typeof v !== 'string'))) {
        issues.push({ path: `package.json:${field}`, message: 'must map package names to version ranges' });
      }
    }
    let entrypoint = config.entrypoint as string[] | undefined;
    const notes: string[] = [];
    if (!entrypoint) {
      const start: unknown = pkg.scripts?.start;
      const m = typeof start === 'string' ? /^node\s+([A-Za-z0-9_./-]+)\s*$/.exec(start.trim()) : null;
      const main = typeof pkg.main === 'string' ? pkg.main.replace(/^\.\//, '') : undefined;
      const file =
        m?.[1]?.replace(/^\.\//, '') ?? (main && project.has(main) ? main : undefined) ?? ENTRY_CANDIDATES.find((f) => project.has(f));
      if (file && project.has(file) && !file.startsWith('../')) {
        entrypoint = ['node', `/project/app/${file}`];
        notes.push(`entrypoint: node ${file}`);
      } else {
        issues.push({
          path: 'entrypoint',
          message: `no entrypoint: set scripts.start to "node <file>", set "main", add one of ${ENTRY_CANDIDATES.join(', ')}, or set entrypoint in svcbuild.yaml`,
        });
      }
    }
    if (issues.length) throw new InputError('the Node project cannot be built', issues);
    const hasDeps = Object.keys(pkg.dependencies ?? {}).length > 0;
    const dependencyFiles = project.has('package-lock.json') ? ['package.json', 'package-lock.json'] : ['package.json'];
    notes.push(project.has('package-lock.json') ? 'dependencies: package-lock.json' : 'dependencies: package.json');
    return {
      kind: 'node',
      dependencyFiles,
      installCommand: hasDeps ? 'node /usr/local/lib/svcbuild/svcbuild-node.js install /project/app' : undefined,
      entrypoint: entrypoint!,
      notes,
      suggestedName: typeof pkg.name === 'string' ? pkg.name : undefined,
    };
  },
};
