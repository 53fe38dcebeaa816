/**
 * Prebuilt executables with assets: the project directory is copied to /project/app as it
 * is, and the executable is the entrypoint.
 */
import { InputError } from '../errors.js';
import type { ProjectConfig } from '../domain/project-config.js';
import type { BaseInfo, BuildPlan, Provider } from './provider.js';
import type { Project } from './project.js';

export const binaryProvider: Provider = {
  kind: 'binary',
  /** A project with no other kind's manifest and exactly one executable at its top level. */
  detect: (p: Project) => !p.has('pyproject.toml') && !p.has('package.json') && p.executables.filter((f) => !f.includes('/')).length === 1,
  async plan(project: Project, _base: BaseInfo, config: ProjectConfig): Promise<BuildPlan> {
    let entrypoint = config.entrypoint as string[] | undefined;
    if (entrypoint) {
      const exe = entrypoint[0]!.replace(/^\/project\/app\//, '');
      if (!entrypoint[0]!.startsWith('/') && !project.executables.includes(exe)) {
        throw new InputError('the binary project cannot be built', [
          { path: 'entrypoint[0]', message: `${exe} is not an executable file of the project (chmod +x it)` },
        ]);
      }
      if (!entrypoint[0]!.startsWith('/')) entrypoint = [`/project/app/${exe}`, ...entrypoint.slice(1)];
    } else {
      const top = project.executables.filter((f) => !f.includes('/'));
      if (top.length !== 1) {
        throw new InputError('the binary project cannot be built', [
          {
            path: 'entrypoint',
            message:
              top.length === 0
                ? 'no executable file at the top of the project: add one (chmod +x) or set entrypoint in svcbuild.yaml'
                : `several executables (${top.join(', ')}): set entrypoint in svcbuild.yaml`,
          },
        ]);
      }
      entrypoint = [`/project/app/${top[0]}`];
    }
    return { kind: 'binary', dependencyFiles: [], entrypoint, notes: [`entrypoint: ${entrypoint.join(' ')}`] };
  },
};
