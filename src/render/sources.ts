/**
 * The I/O half of template rendering: reads the handlebars sources of `workflow-templates/`
 * (each `*.yaml.hbs` a WorkflowTemplate, each `partials/*.yaml.hbs` a partial). The pure
 * renderer in ./templates.ts takes what this returns.
 */
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Template sources by name: `svcbuild-build` for `svcbuild-build.yaml.hbs`. */
export interface TemplateSources {
  templates: Record<string, string>;
  partials: Record<string, string>;
}

/** `workflow-templates/` of this installation (two levels above this file, in src/ or dist/). */
export const DEFAULT_TEMPLATES_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'workflow-templates');

const SUFFIX = '.yaml.hbs';

function readDir(dir: string): Record<string, string> {
  if (!existsSync(dir)) return {};
  const out: Record<string, string> = {};
  for (const file of readdirSync(dir).sort()) {
    if (file.endsWith(SUFFIX)) out[file.slice(0, -SUFFIX.length)] = readFileSync(join(dir, file), 'utf8');
  }
  return out;
}

/** Reads every template and partial under `dir` (synchronously: a handful of small files). */
export function readTemplateSources(dir = DEFAULT_TEMPLATES_DIR): TemplateSources {
  return { templates: readDir(dir), partials: readDir(join(dir, 'partials')) };
}
