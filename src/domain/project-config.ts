/**
 * The optional per-project file `svcbuild.yaml` (or .json): what a project may say about how
 * it is built and run. Every field is optional; CLI flags and API fields override it.
 */
import { z } from 'zod';
import { KINDS } from '../config/schema.js';

export const PROJECT_CONFIG_FILES = ['svcbuild.yaml', 'svcbuild.yml', 'svcbuild.json'] as const;

const noNewline = (what: string) =>
  z
    .string()
    .min(1)
    .refine((s) => !/[\r\n\0]/.test(s), `${what} must not contain line breaks or NUL`);

export const ProjectConfigSchema = z
  .object({
    name: z.string().optional().describe('Service name; default: the project name'),
    kind: z
      .string()
      .optional()
      .describe(`Project kind: ${KINDS.join(', ')}; default: detected`),
    base: z.string().optional().describe('Base image from the catalog; default per kind'),
    entrypoint: z.array(noNewline('entrypoint arguments')).nonempty().optional().describe('Command that starts the service, as a list'),
    port: z.number().int().min(1024).max(65535).optional().describe('Port the service listens on (PORT)'),
    route: z
      .string()
      .regex(/^\/([a-z0-9._~-]+(\/[a-z0-9._~-]+)*)?$/, 'a path like /my/service: lower-case segments of a-z, 0-9, ".", "_", "~", "-"')
      .optional()
      .describe('Route prefix the service is served under (CONTEXT_ROOT)'),
    env: z
      .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'environment variable names are letters, digits and _'), z.string())
      .optional(),
  })
  .strict();

export type ProjectConfig = z.infer<typeof ProjectConfigSchema>;
