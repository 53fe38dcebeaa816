/** `svcbuild base list|build`: the curated base images. */
import { parseArgs } from 'node:util';
import type { CliContext } from '../context.js';
import { terminalReporter } from '../progress.js';
import { createLocalBuilder } from '../../executors/local/index.js';
import { TOOL_IMAGES } from '../../executors/local/base-images.js';
import type { StepRecord } from '../../domain/progress.js';

const HELP = `usage: svcbuild base list
       svcbuild base build [NAME...] [--json]

list   the base image catalog
build  builds and pushes the named base images (default: all, and svcbuild's tool images
       such as the chart's overlay fetcher) unless an image with the same
       inputs is already in the registry, and tags each \`current\` (the tag the argo
       executor resolves base images by); prints each by digest
`;

export async function main(args: string[], ctx: CliContext): Promise<number> {
  const { positionals, values } = parseArgs({
    args,
    allowPositionals: true,
    options: { help: { type: 'boolean', short: 'h' }, json: { type: 'boolean' }, verbose: { type: 'boolean', short: 'v' } },
  });
  const [sub, ...names] = positionals;
  const config = await ctx.config();
  if (values.help || !sub) {
    ctx.stdout.write(HELP);
    return values.help ? 0 : 2;
  }
  if (sub === 'list') {
    for (const [name, spec] of Object.entries(config.baseImages)) {
      ctx.stdout.write(`${name.padEnd(14)} ${spec.kind.padEnd(7)} ${spec.description}\n`);
    }
    return 0;
  }
  if (sub === 'build') {
    const builder = createLocalBuilder(config, terminalReporter(ctx.stderr, Boolean(values.verbose)), ctx.home);
    const steps: StepRecord[] = [];
    const out = [];
    // Default: the catalog and svcbuild's own tool images (the in-cluster publish step finds
    // the fetcher in the registry: a step pod cannot build it).
    for (const name of names.length ? names : [...Object.keys(config.baseImages), ...Object.keys(TOOL_IMAGES)]) {
      if (!(name in TOOL_IMAGES)) builder.bases.spec(name);
      const img = await builder.bases.ensure(name, terminalReporter(ctx.stderr, Boolean(values.verbose)), steps);
      await builder.bases.tagCurrent(img);
      out.push(img);
      if (!values.json) ctx.stdout.write(`${name.padEnd(14)} ${img.ref}\n`);
    }
    if (values.json) ctx.stdout.write(JSON.stringify(out, null, 2) + '\n');
    return 0;
  }
  ctx.stderr.write(HELP);
  return 2;
}
