/**
 * What every pipeline step command shares: flag checks that name the flag, references bound
 * to the configured registry, and outputs written atomically (Argo reads
 * `/tmp/outputs/<name>` after the container exits; a half-written file must never be read).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import type { Config } from '../config/schema.js';
import { InputError, type Issue } from '../errors.js';
import { registryClientFor, type RegistryClient } from '../registry/client.js';
import { parseImageRef, type ImageRef } from '../registry/ref.js';

/** Collects the problems of a step's flags; `check()` throws them as one InputError. */
export class FlagIssues {
  readonly issues: Issue[] = [];
  /** `usage` is kept for callers that print it; the error itself points at --help. */
  constructor(
    private readonly command: string,
    readonly usage: string,
  ) {}

  add(flag: string, message: string): void {
    this.issues.push({ path: `--${flag}`, message });
  }

  /** The value of a required string flag, or undefined after recording the problem. */
  required(values: Record<string, unknown>, flag: string, what = 'required'): string | undefined {
    const v = values[flag];
    if (typeof v !== 'string' || v === '') {
      this.add(flag, what);
      return undefined;
    }
    return v;
  }

  check(): void {
    if (this.issues.length) throw new InputError(`bad arguments (see \`svcbuild ${this.command} --help\`)`, this.issues);
  }
}

export interface RefRules {
  /** `required`: the reference must carry a digest; `forbidden`: it must not. */
  digest?: 'required' | 'forbidden';
  tag?: 'required' | 'forbidden';
  /** Accept any registry host (the default: only the configured one). */
  anyHost?: boolean;
}

/**
 * Parses a reference given in `--flag`, on the configured registry (a host-less reference is
 * taken there; another host is refused: the step's credentials are for that registry only).
 */
export function refFlag(
  issues: FlagIssues,
  flag: string,
  value: string | undefined,
  registryHost: string,
  rules: RefRules = {},
): ImageRef | undefined {
  if (value === undefined) return undefined;
  let ref: ImageRef;
  try {
    ref = parseImageRef(value, registryHost);
  } catch (e) {
    issues.add(flag, e instanceof InputError && e.issues[0] ? e.issues[0].message : (e as Error).message);
    return undefined;
  }
  const before = issues.issues.length;
  if (!rules.anyHost && ref.host !== registryHost)
    issues.add(flag, `"${value}" is on registry ${ref.host}, not on the configured registry ${registryHost} (SVCBUILD_REGISTRY)`);
  if (rules.digest === 'required' && !ref.digest) issues.add(flag, `"${value}" must name a digest: repository@sha256:<64 hex>`);
  if (rules.digest === 'forbidden' && ref.digest) issues.add(flag, `"${value}" must not carry a digest`);
  if (rules.tag === 'required' && !ref.tag) issues.add(flag, `"${value}" must carry a tag: repository:tag`);
  if (rules.tag === 'forbidden' && ref.tag) issues.add(flag, `"${value}" must not carry a tag (by digest only)`);
  return issues.issues.length === before ? ref : undefined;
}

/** Checks an absolute directory flag such as `--outputs`. */
export function dirFlag(issues: FlagIssues, flag: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!isAbsolute(value)) {
    issues.add(flag, `"${value}" must be an absolute path`);
    return undefined;
  }
  return value;
}

/** Parses a JSON object given in `--flag` (an empty value is `{}`). */
export function jsonObjectFlag(issues: FlagIssues, flag: string, value: string | undefined): Record<string, unknown> | undefined {
  if (value === undefined || value.trim() === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch (e) {
    issues.add(flag, `is not JSON: ${(e as Error).message}`);
    return undefined;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    issues.add(flag, 'must be a JSON object');
    return undefined;
  }
  return parsed as Record<string, unknown>;
}

/** A registry client for the configured registry. */
export function stepRegistryClient(config: Config): RegistryClient {
  return registryClientFor(config.registry);
}

/** Writes `path` atomically: a temporary file beside it, then a rename. No trailing newline. */
export async function writeFileAtomic(path: string, value: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeFile(tmp, value, { mode: 0o644 });
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/** Writes one output parameter `<dir>/<name>`. */
export async function writeOutput(dir: string, name: string, value: string): Promise<void> {
  if (!/^[a-z][a-z0-9-]*$/.test(name)) throw new Error(`bad output name ${name}`);
  await writeFileAtomic(join(dir, name), value);
}

/** `host/repo@digest` */
export function digestRefString(ref: { host: string; repo: string }, digest: string): string {
  return `${ref.host}/${ref.repo}@${digest}`;
}
