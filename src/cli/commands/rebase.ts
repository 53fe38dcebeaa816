/** `svcbuild rebase <service> --base NEWREF`: a new image from a new base plus the same project layers. */
import { parseArgs } from 'node:util';
import type { CliContext } from '../context.js';
import { terminalReporter } from '../progress.js';
import { silentReporter } from '../../domain/progress.js';
import { Buildah } from '../../executors/local/buildah.js';
import { localSteps } from '../../executors/local/index.js';
import { rebaseService } from '../../executors/local/rebase.js';

const HELP = `usage: svcbuild rebase <service> --base NAME|REF [--tenant T] [--json]

Moves the service's last build onto a new base image (a catalog name, built if needed, or an
image reference) without installing anything: the same project layers on the new base's
layers. Refuses, saying why, when the new base changes the language version or the
preinstalled set; rebuild then. The result is verified (overlay) and published like a build.
`;

export async function main(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { base: { type: 'string' }, tenant: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help || positionals.length !== 1 || !values.base) {
    (values.help ? ctx.stdout : ctx.stderr).write(HELP);
    return values.help ? 0 : 2;
  }
  const config = await ctx.config();
  const reporter = values.json ? silentReporter : terminalReporter(ctx.stderr);
  const buildah = Buildah.forConfig(config);
  const result = await rebaseService(
    config,
    { buildah, steps: localSteps(config, ctx.home), reporter },
    { service: positionals[0]!, base: values.base, tenant: values.tenant },
  );
  if (values.json) ctx.stdout.write(JSON.stringify(result, null, 2) + '\n');
  else
    ctx.stdout.write(
      `\nimage    ${result.image}\nbase     ${result.base}\nchart    ${result.chart ? `${result.chart.ref} --version ${result.chart.version}` : '-'}\n`,
    );
  return 0;
}
