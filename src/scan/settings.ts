/**
 * Settings of the scan step, as data: where Trivy and its database are, the gate's threshold
 * and the ignore list. Meant to be mounted as `scan` in the configuration schema
 * (`scan: ScanSettingsSchema.prefault({})`); `resolveScanSettings` fills the defaults that
 * depend on the registry.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { z } from 'zod';
import { InputError } from '../errors.js';
import { IgnoreEntrySchema, SeveritySchema, type IgnoreEntry } from './gate.js';
import type { Severity } from './report.js';

/** The Trivy release svcbuild builds (scripts/install-trivy.sh) and runs. */
export const TRIVY_VERSION = '0.74.0';

export const ScanSettingsSchema = z.object({
  enabled: z
    .union([z.boolean(), z.literal('auto')])
    .default('auto')
    .describe('Run the scan step: true, false, or auto (when trivy is installed and its DB is in the registry)'),
  threshold: SeveritySchema.default('HIGH').describe('New findings at or above this severity fail the gate'),
  ignore: z.array(IgnoreEntrySchema).default([]).describe('Accepted findings: id, reason, optional expiry and package'),
  trivyPath: z.string().optional().describe('The trivy binary (default: where scripts/install-trivy.sh puts it)'),
  dbRepository: z
    .string()
    .optional()
    .describe('OCI repository of the Trivy vulnerability DB (default: <registry host>/trivy-db:2, a mirror in the own registry)'),
  cacheDir: z.string().optional().describe("Trivy's cache (its DB and layer analyses; default: <stateDir>/trivy)"),
  timeoutSeconds: z.number().int().positive().default(900).describe('Kill a Trivy run after this long'),
});
export type ScanSettingsInput = z.input<typeof ScanSettingsSchema>;

/** Settings with every default filled. */
export interface ScanSettings {
  enabled: boolean | 'auto';
  threshold: Severity;
  ignore: IgnoreEntry[];
  trivyPath: string;
  dbRepository: string;
  cacheDir: string;
  timeoutSeconds: number;
}

/**
 * Where scripts/install-trivy.sh installs trivy, when it is there; else a `trivy` on PATH
 * (the step image has /usr/local/bin/trivy); else the install location (for the message).
 */
export function defaultTrivyPath(env: NodeJS.ProcessEnv = process.env): string {
  const installed = join(env.SVCBUILD_TOOLS ?? join(homedir(), '.cache', 'svcbuild-tools'), 'bin', 'trivy');
  if (existsSync(installed)) return installed;
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, 'trivy'))) return join(dir, 'trivy');
  }
  return installed;
}

/**
 * Validates raw scan settings and fills the defaults: the DB mirror in the build registry
 * and the cache under the state directory.
 */
export function resolveScanSettings(raw: unknown, ctx: { registryHost: string; stateDir: string; env?: NodeJS.ProcessEnv }): ScanSettings {
  const res = ScanSettingsSchema.safeParse(raw ?? {});
  if (!res.success) {
    throw new InputError(
      'invalid scan settings',
      res.error.issues.map((i) => ({ path: ['scan', ...i.path].join('.'), message: i.message })),
    );
  }
  const s = res.data;
  return {
    enabled: s.enabled,
    threshold: s.threshold,
    ignore: s.ignore,
    trivyPath: s.trivyPath ?? defaultTrivyPath(ctx.env),
    dbRepository: s.dbRepository ?? `${ctx.registryHost}/trivy-db:2`,
    cacheDir: s.cacheDir ?? join(ctx.stateDir, 'trivy'),
    timeoutSeconds: s.timeoutSeconds,
  };
}
