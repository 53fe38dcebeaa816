/**
 * `svcbuild build-image --engine=buildah`: the buildah swap of the Kaniko builder container.
 * Same contract: the context in --context, the unpromoted image pushed to --destination, its
 * manifest digest written to --digest-file.
 */
import { stat } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { parseArgs } from 'node:util';
import { caVolumes } from '../../executors/local/base-images.js';
import { Buildah } from '../../executors/local/buildah.js';
import { FlagIssues, dirFlag, refFlag, writeFileAtomic } from '../../steps/common.js';
import type { CliContext } from '../context.js';

const USAGE = `usage: svcbuild build-image --engine=buildah --context=DIR [--dockerfile=FILE]
                            --destination=REPO:TAG --digest-file=FILE
                            [--isolation=chroot|oci] [--plain-http]

Builds the context with buildah and pushes the image; writes its manifest digest to
--digest-file (as Kaniko's --digest-file does).

options:
  --engine E         buildah (Kaniko runs as its own container, not through svcbuild)
  --context DIR      the build context (absolute), as \`svcbuild context\` wrote it
  --dockerfile FILE  default: DIR/Dockerfile
  --destination REF  repository:tag to push to
  --digest-file F    file the pushed manifest digest is written to
  --isolation I      buildah isolation for RUN steps (default: the configured one)
  --plain-http       push over plain HTTP / without TLS verification
  -h, --help         show this help`;

export async function main(args: string[], ctx: CliContext): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      engine: { type: 'string' },
      context: { type: 'string' },
      dockerfile: { type: 'string' },
      destination: { type: 'string' },
      'digest-file': { type: 'string' },
      isolation: { type: 'string' },
      'plain-http': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    ctx.stdout.write(USAGE + '\n');
    return 0;
  }
  const config = await ctx.config();
  const issues = new FlagIssues('build-image', USAGE);
  const engine = issues.required(values, 'engine', 'required: buildah');
  if (engine === 'kaniko') issues.add('engine', 'Kaniko runs as its own container (/kaniko/executor); svcbuild drives buildah only');
  else if (engine !== undefined && engine !== 'buildah') issues.add('engine', `"${engine}" is not buildah`);
  const context = dirFlag(issues, 'context', issues.required(values, 'context'));
  if (context !== undefined) {
    const st = await stat(context).catch(() => undefined);
    if (!st?.isDirectory()) issues.add('context', `${context} is not a directory`);
  }
  const dockerfile = values.dockerfile ?? (context !== undefined ? join(context, 'Dockerfile') : undefined);
  if (dockerfile !== undefined) {
    if (!isAbsolute(dockerfile)) issues.add('dockerfile', `"${dockerfile}" must be an absolute path`);
    else if (!(await stat(dockerfile).catch(() => undefined))?.isFile())
      issues.add('dockerfile', `${dockerfile} does not exist (run \`svcbuild context\` first)`);
  }
  // Kaniko's destination can be any registry the pod has credentials for; so can buildah's.
  const destination = refFlag(issues, 'destination', issues.required(values, 'destination'), config.registry.host, {
    tag: 'required',
    digest: 'forbidden',
    anyHost: true,
  });
  const digestFile = issues.required(values, 'digest-file');
  if (digestFile !== undefined && !isAbsolute(digestFile)) issues.add('digest-file', `"${digestFile}" must be an absolute path`);
  const isolation = values.isolation ?? config.build.isolation;
  if (isolation !== 'chroot' && isolation !== 'oci') issues.add('isolation', `"${isolation}" is not chroot or oci`);
  issues.check();

  const tag = `${destination!.host}/${destination!.repo}:${destination!.tag!}`;
  const onDefaultRegistry = destination!.host === config.registry.host;
  const buildah = new Buildah({
    tlsVerify: !(values['plain-http'] || (onDefaultRegistry && config.registry.plainHttp)),
    creds: onDefaultRegistry && config.registry.username ? `${config.registry.username}:${config.registry.password}` : undefined,
    isolation: isolation as 'chroot' | 'oci',
  });
  await buildah.bud({
    contextDir: context!,
    dockerfile: dockerfile!,
    tag,
    volumes: caVolumes(config),
    onLine: (l) => ctx.stderr.write(`${l}\n`),
    step: 'build',
  });
  const digest = await buildah.push(tag, tag);
  await writeFileAtomic(digestFile!, digest);
  ctx.stdout.write(`pushed ${destination!.host}/${destination!.repo}@${digest} (${tag})\n`);
  return 0;
}
