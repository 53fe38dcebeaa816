/**
 * Python projects: pyproject.toml with [project]. Dependencies are installed with uv into
 * the base image's venv under the base's constraints (so preinstalled versions are reused,
 * never replaced), then every new file is moved to /project/the_venv and the base venv is
 * verified against its sha256 manifest.
 */
import { parse as parseToml } from 'smol-toml';
import { InputError, type Issue } from '../errors.js';
import type { ProjectConfig } from '../domain/project-config.js';
import { checkRequiresPython } from './pep440.js';
import type { BaseInfo, BuildPlan, Provider } from './provider.js';
import type { Project } from './project.js';

const VENV = '/home/user/the_venv';
const ENTRY_CANDIDATES = ['main.py', 'app.py', 'server.py', '__main__.py'];

export const pythonProvider: Provider = {
  kind: 'python',
  detect: (p: Project) => p.has('pyproject.toml'),
  async plan(project: Project, base: BaseInfo, config: ProjectConfig): Promise<BuildPlan> {
    const issues: Issue[] = [];
    if (!project.has('pyproject.toml')) {
      throw new InputError('this is not a Python project', [
        { path: 'pyproject.toml', message: 'missing: add a pyproject.toml with a [project] table listing your dependencies' },
      ]);
    }
    let doc: Record<string, any>;
    try {
      doc = parseToml(await project.readText('pyproject.toml')) as Record<string, any>;
    } catch (e) {
      throw new InputError('pyproject.toml is not valid TOML', [{ path: 'pyproject.toml', message: (e as Error).message.split('\n')[0]! }]);
    }
    const proj = doc.project as Record<string, any> | undefined;
    if (!proj || typeof proj !== 'object') {
      issues.push({ path: 'pyproject.toml:project', message: 'missing [project] table: add one with name and dependencies' });
    }
    const requires = proj?.['requires-python'];
    const pyVersion = base.languageVersion;
    if (requires !== undefined) {
      if (typeof requires !== 'string') {
        issues.push({ path: 'pyproject.toml:project.requires-python', message: 'must be a string such as ">=3.12"' });
      } else if (pyVersion) {
        const failed = checkRequiresPython(requires, pyVersion);
        if (failed) {
          issues.push({
            path: 'pyproject.toml:project.requires-python',
            message: `"${requires}" excludes Python ${pyVersion} of base image ${base.name} (fails ${failed}); relax requires-python or choose another base with --base`,
          });
        }
      }
    }
    const deps = proj?.dependencies;
    if (deps !== undefined && (!Array.isArray(deps) || deps.some((d) => typeof d !== 'string'))) {
      issues.push({ path: 'pyproject.toml:project.dependencies', message: 'must be a list of requirement strings' });
    }
    let entrypoint: string[] | undefined = config.entrypoint;
    const notes: string[] = [];
    if (!entrypoint) {
      const found = ENTRY_CANDIDATES.find((f) => project.has(f));
      if (found) {
        entrypoint = ['python', `/project/app/${found}`];
        notes.push(`entrypoint: python ${found}`);
      } else {
        issues.push({
          path: 'entrypoint',
          message: `no entrypoint: add one of ${ENTRY_CANDIDATES.join(', ')}, or set entrypoint in svcbuild.yaml (e.g. ["python", "-m", "myservice"])`,
        });
      }
    }
    if (!pyVersion) issues.push({ path: 'base', message: `base image ${base.name} does not declare its Python version (languageVersion)` });
    if (issues.length) throw new InputError('the Python project cannot be built', issues);

    const python = `python${pyVersion}`;
    const uvInstall = `uv pip install --python ${VENV}/bin/python --constraint /home/user/constraints.txt --no-compile`;
    const adopt = `${python} -I -B /usr/local/lib/svcbuild/svcbuild-python.py adopt ${VENV} /home/user/the_venv.sha256 /project/the_venv`;
    let dependencyFiles: string[];
    let install: string;
    if (project.has('uv.lock')) {
      dependencyFiles = ['pyproject.toml', 'uv.lock'];
      install =
        `uv export --frozen --no-dev --no-emit-project --no-hashes --format requirements-txt --project /project/app -o /tmp/svcbuild-requirements.txt` +
        ` && ${uvInstall} -r /tmp/svcbuild-requirements.txt && rm -f /tmp/svcbuild-requirements.txt`;
      notes.push('dependencies: uv.lock');
    } else if (project.has('requirements.txt')) {
      dependencyFiles = ['pyproject.toml', 'requirements.txt'];
      install = `${uvInstall} -r /project/app/requirements.txt`;
      notes.push('dependencies: requirements.txt');
    } else {
      dependencyFiles = ['pyproject.toml'];
      install = `${uvInstall} -r /project/app/pyproject.toml`;
      notes.push('dependencies: pyproject.toml');
    }
    return {
      kind: 'python',
      dependencyFiles,
      installCommand: `${install} && ${adopt}`,
      entrypoint: entrypoint!,
      notes,
      suggestedName: typeof proj?.name === 'string' ? proj.name : undefined,
    };
  },
};
