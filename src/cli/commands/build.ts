/** `svcbuild build <dir>`: the whole local pipeline in one call. */
import { parseArgs } from 'node:util';
import type { CliContext } from '../context.js';
import { SvcbuildError } from '../../errors.js';
import { terminalReporter } from '../progress.js';
import { silentReporter } from '../../domain/progress.js';
import { createLocalBuilder } from '../../executors/local/index.js';

const HELP = `usage: svcbuild build <dir> [options]

Builds the project in <dir> into an image on a curated base image, computes its overlay zip,
and publishes its chart, with buildah and the configured registry (no Docker daemon).

options:
  --name NAME        service name (default: the project's name)
  --kind KIND        python, node or binary (default: detected)
  --base NAME        base image from the catalog (default: per kind; see \`svcbuild base list\`)
  --registry HOST    registry host[:port] (default: config registry.host, 127.0.0.1:5000)
  --tenant NAME      tenant prefix of the service name (default: config defaults.tenant)
  --json             print one JSON object with the result on stdout
  -v, --verbose      print every line of tool output
`;

export async function main(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      name: { type: 'string' },
      kind: { type: 'string' },
      base: { type: 'string' },
      registry: { type: 'string' },
      tenant: { type: 'string' },
      json: { type: 'boolean', default: false },
      verbose: { type: 'boolean', short: 'v', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    ctx.stdout.write(HELP);
    return 0;
  }
  if (positionals.length !== 1) {
    ctx.stderr.write(`svcbuild build: give exactly one project directory\n\n${HELP}`);
    return 2;
  }
  let config = await ctx.config();
  if (values.registry) {
    const { parseConfig } = await import('../../config/schema.js');
    const reparsed = parseConfig({ registry: { host: values.registry } });
    config = { ...config, registry: reparsed.registry };
  }
  // Progress goes to stderr so that --json keeps stdout to one object.
  const reporter =
    ctx.stderr.isTTY || !values.json
      ? terminalReporter(ctx.stderr, values.verbose)
      : values.verbose
        ? terminalReporter(ctx.stderr, true)
        : silentReporter;
  const builder = createLocalBuilder(config, reporter, ctx.home);
  let result;
  try {
    result = await builder.build({
      projectDir: positionals[0]!,
      name: values.name,
      kind: values.kind,
      base: values.base,
      tenant: values.tenant,
    });
  } catch (err) {
    // With --json, a build that got as far as an image still prints its result (with its
    // scan summary when the gate failed) and the error, then exits non-zero.
    const partial = (err as { result?: unknown }).result;
    if (values.json && partial && err instanceof SvcbuildError) {
      ctx.stdout.write(
        JSON.stringify({ ...partial, error: { step: (err as { step?: string }).step, code: err.code, message: err.message } }, null, 2) +
          '\n',
      );
      ctx.stderr.write(`svcbuild build: error: ${err.message}\n`);
      return err.exitCode;
    }
    throw err;
  }
  if (values.json) {
    ctx.stdout.write(JSON.stringify(result, null, 2) + '\n');
  } else {
    ctx.stdout.write(
      [
        '',
        `service  ${result.service} (${result.kind})`,
        `image    ${result.image}`,
        `base     ${result.base}`,
        result.overlay ? `overlay  ${result.overlay.path} (${result.overlay.bytes} bytes, ${result.overlay.digest})` : undefined,
        result.chart ? `chart    ${result.chart.ref} --version ${result.chart.version}` : undefined,
        '',
      ]
        .filter((l) => l !== undefined)
        .join('\n') + '\n',
    );
  }
  return 0;
}
