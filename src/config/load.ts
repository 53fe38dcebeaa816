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

/** Environment variables that override single settings, for quick use on one machine. */
const ENV_OVERRIDES: Array<[string, (raw: Record<string, any>, v: string) => void]> = [
  ['SVCBUILD_REGISTRY', (r, v) => ((r.registry ??= {}).host = v)],
  ['SVCBUILD_REGISTRY_USERNAME', (r, v) => ((r.registry ??= {}).username = v)],
  ['SVCBUILD_REGISTRY_PASSWORD', (r, v) => ((r.registry ??= {}).password = v)],
  ['SVCBUILD_STATE_DIR', (r, v) => (r.stateDir = v)],
  [
    'SVCBUILD_ENABLED_KINDS',
    (r, v) =>
      (r.enabledKinds = v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)),
  ],
];

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
  for (const [name, apply] of ENV_OVERRIDES) {
    const v = opts.env[name];
    if (v !== undefined && v !== '') apply(raw, v);
  }
  const cfg = parseConfig(raw);
  const abs = (p: string, base: string) => (isAbsolute(p) ? p : resolve(base, p));
  return { ...cfg, stateDir: abs(cfg.stateDir, opts.home), baseImagesDir: abs(cfg.baseImagesDir, opts.home) };
}
