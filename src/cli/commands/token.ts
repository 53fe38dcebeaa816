/** `svcbuild token create --tenant T`: a new API token for the local default. */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { CliContext } from '../context.js';
import { TokenStore } from '../../api/tokens.js';

const HELP = `usage: svcbuild token create --tenant T

Prints a new bearer token for tenant T. Only its sha256 is stored (state directory,
tokens.json), so keep the printed token: it cannot be shown again.
`;

export async function main(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { tenant: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help || positionals[0] !== 'create' || !values.tenant) {
    (values.help ? ctx.stdout : ctx.stderr).write(HELP);
    return values.help ? 0 : 2;
  }
  const config = await ctx.config();
  const token = await new TokenStore(join(config.stateDir, 'tokens.json')).create(values.tenant);
  ctx.stdout.write(`${token}\n`);
  return 0;
}
