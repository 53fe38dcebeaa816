/**
 * A build as the API and the executors see it: request, record and status. Types and zod
 * schemas shared by the API and the CLI.
 */
import { z } from 'zod';
import type { StepRecord } from './progress.js';
import type { ScanSummary } from '../scan/step.js';

export const BUILD_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type BuildStatus = (typeof BUILD_STATUSES)[number];
export const TERMINAL: ReadonlySet<BuildStatus> = new Set(['succeeded', 'failed', 'cancelled']);

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'letters, digits and _, not starting with a digit');
const noCtl = (max: number) =>
  z
    .string()
    .max(max)
    .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), 'must not contain control characters');

/** What a user may ask of a build, besides its source. */
export const BuildSpecSchema = z
  .object({
    name: z.string().max(64).optional().describe('Service name; default: the project name'),
    kind: z.string().max(32).optional().describe('python, node or binary; default: detected'),
    base: z.string().max(64).optional().describe('Base image from the catalog'),
    port: z.number().int().min(1024).max(65535).optional(),
    route: z
      .string()
      .regex(/^\/([a-z0-9._~-]+(\/[a-z0-9._~-]+)*)?$/, 'a path like /my/service')
      .optional(),
    env: z.record(envName, noCtl(4096)).optional(),
  })
  .strict();
export type BuildSpec = z.infer<typeof BuildSpecSchema>;

/** A git source: a public repository URL, a ref and an optional subdirectory. */
export const GitSourceSchema = z
  .object({
    url: noCtl(2048).refine(
      (u) => /^(https|http|git):\/\/[^\s/$.?#@][^\s@]*$/i.test(u),
      'an https:// (or, for loopback, http:// or git://) URL without credentials',
    ),
    ref: z
      .string()
      .min(1)
      .max(255)
      .regex(/^(?!-)(?!.*\.\.)[A-Za-z0-9._/-]+$/, 'a branch, tag or commit: letters, digits, . _ / -, not starting with -')
      .default('main'),
    subdirectory: z
      .string()
      .max(1024)
      .regex(/^(?!\/)(?!.*(^|\/)\.\.(\/|$))[A-Za-z0-9._/-]*$/, 'a relative path inside the repository')
      .default(''),
  })
  .strict();
export type GitSource = z.infer<typeof GitSourceSchema>;

export const GitBuildRequestSchema = z.object({ git: GitSourceSchema, spec: BuildSpecSchema.default({}) }).strict();

export type SourceInfo =
  | { type: 'archive'; format: string; sha256: string; files: number; bytes: number }
  | { type: 'git'; url: string; ref: string; subdirectory: string; commit?: string };

export interface BuildRecord {
  id: string;
  tenant: string;
  status: BuildStatus;
  spec: BuildSpec;
  source: SourceInfo;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  /** Qualified service name, known once the source step has run. */
  service?: string;
  name?: string;
  kind?: string;
  steps: StepRecord[];
  image?: string;
  base?: string;
  overlay?: { digest: string; bytes: number; ref?: string };
  chart?: { ref: string; version: string; digest?: string };
  /** The scan gate's decision and counts. */
  scan?: ScanSummary;
  error?: { step?: string; code: string; message: string };
  /** The build this one retries. */
  retryOf?: string;
  /** How many times the executor started it (restarts resume from the start). */
  attempts: number;
}
