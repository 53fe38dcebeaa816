/**
 * `svcbuild overlay`: computes the overlay zip of a built image over its base image, from
 * the registry, without running either; optionally writes it and pushes it as an artifact
 * referring to the image. This is also the step the overlay workflow pod runs.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { InputError } from '../../errors.js';
import { computeOverlay, pushOverlay, type EnvManifestSource } from '../../overlay/index.js';
import { registryClientFor } from '../../registry/client.js';
import { parseImageRef } from '../../registry/ref.js';
import type { CliContext } from '../context.js';

const USAGE = `usage: svcbuild overlay --base REF --image REF [--out FILE] [--push] [--json]
                        [--env-manifest ROOT=PATH]...

Computes the overlay of --image over --base from the registry: the files under /project,
as a deterministic zip. Fails (exit 7) listing every path changed outside /project.

options:
  --base REF            base image reference (host/repo:tag or host/repo@sha256:...)
  --image REF           built image reference
  --out FILE            write the zip to FILE
  --push[=REPO:TAG]     push the zip as an OCI artifact referring to the image (and tag it)
  --outputs DIR         write the artifact digest to DIR/overlay-digest (workflow steps)
  --env-manifest R=P    check the env at absolute root R against the base image's
                        sha256 manifest file P (e.g. /home/user/the_venv=/home/user/the_venv.sha256)
  --json                print the result as JSON
  -h, --help            show this help

A reference without a host is taken on the configured registry.`;

/** The env manifests of the curated base images: checked when the base has them. */
const KNOWN_ENV_MANIFESTS: EnvManifestSource[] = [
  { root: '/home/user/the_venv', path: '/home/user/the_venv.sha256', optional: true },
  { root: '/home/user/node_modules', path: '/home/user/node_modules.sha256', optional: true },
];

export async function main(rawArgs: string[], ctx: CliContext): Promise<number> {
  // The workflow step passes --push=<repo>:<tag>: push, and also tag the artifact.
  let pushTag: string | undefined;
  const args = rawArgs.flatMap((a) => {
    const m = /^--push=(.+)$/.exec(a);
    if (!m) return [a];
    pushTag = m[1]!;
    return ['--push'];
  });
  const { values } = parseArgs({
    args,
    options: {
      base: { type: 'string' },
      image: { type: 'string' },
      out: { type: 'string' },
      push: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      'env-manifest': { type: 'string', multiple: true, default: [] },
      outputs: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    ctx.stdout.write(USAGE + '\n');
    return 0;
  }
  const issues = [];
  if (!values.base) issues.push({ path: '--base', message: 'required' });
  if (!values.image) issues.push({ path: '--image', message: 'required' });
  const envManifests: EnvManifestSource[] = [];
  for (const spec of values['env-manifest']) {
    const eq = spec.indexOf('=');
    const root = spec.slice(0, eq);
    const path = spec.slice(eq + 1);
    if (eq < 0 || !root.startsWith('/') || !path.startsWith('/'))
      issues.push({ path: '--env-manifest', message: `"${spec}" is not ROOT=PATH with absolute paths` });
    else envManifests.push({ root, path });
  }
  if (issues.length) throw new InputError(`svcbuild overlay: bad arguments\n${USAGE}`, issues);

  const { registry } = await ctx.config();
  const client = registryClientFor(registry);
  const base = parseImageRef(values.base as string, registry.host);
  const image = parseImageRef(values.image as string, registry.host);
  const res = await computeOverlay({ client, base, image, envManifests: envManifests.length ? envManifests : KNOWN_ENV_MANIFESTS });
  if (values.out) await writeFile(values.out, res.zip);
  const artifact = values.push ? await pushOverlay(client, res.image.repo, res.image.digest, res.zip) : undefined;
  if (artifact && pushTag) {
    const tag = pushTag.slice(pushTag.lastIndexOf(':') + 1);
    if (/^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/.test(tag) && pushTag.includes(':')) await client.tagManifest(res.image.repo, artifact, tag);
  }
  if (values.outputs) {
    // The workflow step's output parameter: the overlay artifact's digest.
    await mkdir(values.outputs, { recursive: true });
    await writeFile(join(values.outputs, 'overlay-digest.tmp'), artifact ?? res.digest);
    await rename(join(values.outputs, 'overlay-digest.tmp'), join(values.outputs, 'overlay-digest'));
  }

  if (values.json) {
    const out = {
      image: `${client.host}/${res.image.repo}@${res.image.digest}`,
      digest: res.digest,
      bytes: res.bytes,
      entries: res.entries.map((e) => ({
        path: e.path,
        type: e.type,
        mode: `0${e.mode.toString(8)}`,
        ...(e.linkname !== undefined ? { linkname: e.linkname } : {}),
      })),
      ...(values.out ? { out: values.out } : {}),
      ...(artifact ? { artifact } : {}),
    };
    ctx.stdout.write(JSON.stringify(out, null, 2) + '\n');
  } else {
    ctx.stdout.write(`overlay ${res.digest}: ${res.entries.length} entries, ${res.bytes} bytes\n`);
    if (values.out) ctx.stdout.write(`written to ${values.out}\n`);
    if (artifact) ctx.stdout.write(`pushed ${client.host}/${res.image.repo}@${artifact} (referrer of ${res.image.digest})\n`);
  }
  return 0;
}
