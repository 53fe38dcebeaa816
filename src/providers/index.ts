/**
 * Choosing a provider: an explicit kind wins, else detection. An unknown kind and a known
 * kind this installation disables are two different errors (seeds/001).
 */
import { KINDS, type Kind } from '../config/schema.js';
import { InputError } from '../errors.js';
import { binaryProvider } from './binary.js';
import { nodeProvider } from './node.js';
import type { Provider } from './provider.js';
import type { Project } from './project.js';
import { pythonProvider } from './python.js';

export const PROVIDERS: Record<Kind, Provider> = { python: pythonProvider, node: nodeProvider, binary: binaryProvider };

export function selectProvider(project: Project, requested: string | undefined, enabled: readonly Kind[], field = 'kind'): Provider {
  if (requested !== undefined) {
    if (!(KINDS as readonly string[]).includes(requested)) {
      throw new InputError(`unknown project kind "${requested}"`, [
        { path: field, message: `"${requested}" is not a project kind; known kinds: ${KINDS.join(', ')}` },
      ]);
    }
    const kind = requested as Kind;
    if (!enabled.includes(kind)) {
      throw new InputError(`project kind "${kind}" is not enabled here`, [
        {
          path: field,
          message: `"${kind}" is a known kind, but this installation enables only: ${enabled.join(', ')} (config.enabledKinds)`,
        },
      ]);
    }
    return PROVIDERS[kind];
  }
  const detected = KINDS.filter((k) => PROVIDERS[k].detect(project));
  if (detected.length === 0) {
    throw new InputError('cannot tell what kind of project this is', [
      {
        path: 'kind',
        message:
          'found no pyproject.toml (python), no package.json (node) and no single top-level executable (binary); add one or pass --kind',
      },
    ]);
  }
  const kind = detected[0]!;
  if (!enabled.includes(kind)) {
    throw new InputError(`project kind "${kind}" is not enabled here`, [
      {
        path: 'kind',
        message: `the project looks like "${kind}", a known kind that this installation does not enable (enabled: ${enabled.join(', ')})`,
      },
    ]);
  }
  return PROVIDERS[kind];
}
