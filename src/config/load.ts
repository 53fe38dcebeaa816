/**
 * The only reader of configuration files and process.env. Sources, later ones winning:
 * defaults, the file named by SVCBUILD_CONFIG (YAML or JSON), then SVCBUILD_* variables.
 */
import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { InputError } from '../errors.js';
import { parseConfig, type Config } from './schema.js';

export interface LoadOptions {
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** The svcbuild installation directory: relative paths of the defaults resolve against it. */
  home: string;
}

/** `true` or `false`, else an InputError naming the variable and the fix. */
function envBoolean(v: string, name: string): boolean {
  if (v === 'true' || v === 'false') return v === 'true';
  throw new InputError(`${name} must be true or false`, [
    { path: name, message: `"${v}" is not true or false; set ${name}=true or ${name}=false` },
  ]);
}

/** A comma-separated list, blanks dropped. */
function envList(v: string): string[] {
  return v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/**
 * Environment variables that override single settings (the dotted path of each): for quick
 * use on one machine, and how the WorkflowTemplates hand the installation's registry to every
 * step container (workflow-templates/partials/step-env.yaml.hbs).
 */
export const ENV_OVERRIDES: ReadonlyArray<{ name: string; path: string; parse?: (v: string, name: string) => unknown }> = [
  { name: 'SVCBUILD_REGISTRY', path: 'registry.host' },
  { name: 'SVCBUILD_REGISTRY_NAMESPACE', path: 'registry.namespace' },
  { name: 'SVCBUILD_REGISTRY_PLAIN_HTTP', path: 'registry.plainHttp', parse: envBoolean },
  { name: 'SVCBUILD_REGISTRY_USERNAME', path: 'registry.username' },
  { name: 'SVCBUILD_REGISTRY_PASSWORD', path: 'registry.password' },
  { name: 'SVCBUILD_STATE_DIR', path: 'stateDir' },
  { name: 'SVCBUILD_ENABLED_KINDS', path: 'enabledKinds', parse: envList },
];

function setPath(raw: Record<string, any>, path: string, value: unknown): void {
  const keys = path.split('.');
  const last = keys.pop() as string;
  let obj = raw;
  for (const k of keys) obj = obj[k] = typeof obj[k] === 'object' && obj[k] !== null ? obj[k] : {};
  obj[last] = value;
}

export async function loadConfig(opts: LoadOptions): Promise<Config> {
  let raw: Record<string, any> = {};
  const file = opts.env.SVCBUILD_CONFIG;
  if (file) {
    let text: string;
    try {
      text = await readFile(resolve(opts.cwd, file), 'utf8');
    } catch (e) {
      throw new InputError(`SVCBUILD_CONFIG names ${file}, which cannot be read: ${(e as Error).message}`);
    }
    try {
      raw = (parseYaml(text) as Record<string, any>) ?? {};
    } catch (e) {
      throw new InputError(`SVCBUILD_CONFIG file ${file} is not valid YAML: ${(e as Error).message}`);
    }
  }
  const fromEnv = new Map<string, string>();
  for (const { name, path, parse } of ENV_OVERRIDES) {
    const v = opts.env[name];
    if (v === undefined || v === '') continue;
    setPath(raw, path, parse ? parse(v, name) : v);
    fromEnv.set(`config.${path}`, name);
  }
  let cfg: Config;
  try {
    cfg = parseConfig(raw);
  } catch (e) {
    if (!(e instanceof InputError)) throw e;
    // A bad value that came from a variable: name the variable, which is what to fix.
    const variableOf = (path: string) => [...fromEnv].find(([p]) => path === p || path.startsWith(`${p}.`))?.[1];
    if (!e.issues.some((i) => variableOf(i.path))) throw e;
    const issues = e.issues.map((i) => {
      const name = variableOf(i.path);
      return name ? { ...i, message: `${i.message} (set by ${name})` } : i;
    });
    throw new InputError('invalid svcbuild configuration', issues);
  }
  const abs = (p: string, base: string) => (isAbsolute(p) ? p : resolve(base, p));
  return { ...cfg, stateDir: abs(cfg.stateDir, opts.home), baseImagesDir: abs(cfg.baseImagesDir, opts.home) };
}
