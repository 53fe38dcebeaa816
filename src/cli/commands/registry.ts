/** `svcbuild registry start|stop`: the local default's OCI registry on loopback. */
import { parseArgs } from 'node:util';
import type { CliContext } from '../context.js';
import { startLocalRegistry, stopLocalRegistry } from '../../executors/local/registry-server.js';

const HELP = `usage: svcbuild registry start|stop

start  runs Debian's docker-registry on the configured loopback host (default 127.0.0.1:5000),
       with its data under the state directory; does nothing if one already answers there
stop   stops the registry that \`start\` started
`;

export async function main(args: string[], ctx: CliContext): Promise<number> {
  const { positionals, values } = parseArgs({ args, allowPositionals: true, options: { help: { type: 'boolean', short: 'h' } } });
  if (values.help || positionals.length !== 1) {
    ctx.stdout.write(HELP);
    return values.help ? 0 : 2;
  }
  const config = await ctx.config();
  if (positionals[0] === 'start') {
    const state = await startLocalRegistry(config.stateDir, config.registry.host);
    ctx.stdout.write(`registry ${config.registry.host}: ${state}\n`);
    return 0;
  }
  if (positionals[0] === 'stop') {
    ctx.stdout.write((await stopLocalRegistry(config.stateDir)) ? 'registry stopped\n' : 'no registry started by svcbuild\n');
    return 0;
  }
  ctx.stderr.write(HELP);
  return 2;
}
