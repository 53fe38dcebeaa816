/**
 * Test helpers around the real helm binary: render a chart with given values and parse
 * the manifests, or capture helm's error for values the chart's schema rejects.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, stringify } from 'yaml';
import { run, runOk } from '../../src/util/exec.js';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SERVICE_CHART = join(ROOT, 'charts', 'platform-service');
export const SVCBUILD_CHART = join(ROOT, 'charts', 'svcbuild');

export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: any;
}

async function withValuesFile<T>(values: object, fn: (file: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'svcbuild-chart-test-'));
  try {
    const file = join(dir, 'values.yaml');
    await writeFile(file, stringify(values));
    return await fn(file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Parses a multi-document YAML stream into its non-empty documents. */
export function parseManifests(text: string): Manifest[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as Manifest | null)
    .filter((m): m is Manifest => m !== null);
}

/** `helm template` of a chart with the given values; the parsed manifests. */
export async function template(chart: string, values: object, opts: { release?: string; namespace?: string } = {}): Promise<Manifest[]> {
  return withValuesFile(values, async (file) => {
    const res = await runOk('helm', ['template', opts.release ?? 'shop', chart, '--namespace', opts.namespace ?? 'acme', '--values', file]);
    return parseManifests(res.stdout);
  });
}

/** `helm template` expected to fail: helm's error output. */
export async function templateError(chart: string, values: object): Promise<string> {
  return withValuesFile(values, async (file) => {
    const res = await run('helm', ['template', 'shop', chart, '--values', file]);
    if (res.code === 0) throw new Error(`helm template succeeded, expected a failure:\n${res.stdout}`);
    return res.stderr;
  });
}

/** `helm lint --strict` with the given values; its exit code and output. */
export async function lint(chart: string, values: object): Promise<{ code: number; output: string }> {
  return withValuesFile(values, async (file) => {
    const res = await run('helm', ['lint', '--strict', chart, '--values', file]);
    return { code: res.code, output: res.output };
  });
}

/** The one manifest of a kind (and name, if given); throws if there is not exactly one. */
export function one(manifests: Manifest[], kind: string, name?: string): Manifest {
  const found = manifests.filter((m) => m.kind === kind && (name === undefined || m.metadata.name === name));
  if (found.length !== 1) throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length}`);
  return found[0]!;
}
