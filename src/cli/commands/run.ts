/** `svcbuild run <service>`: start a built service on this machine for testing. */
import { parseArgs } from 'node:util';
import type { CliContext } from '../context.js';
import { InputError } from '../../errors.js';
import { latestBuild } from '../../executors/local/rebase.js';
import { runBuild } from '../../executors/local/run.js';

const HELP = `usage: svcbuild run <service> [--mode image|overlay] [--port N] [--route /path] [-e K=V]... [--detach]

Starts the service's last local build with podman on the host network: from its image, or
with --mode overlay from its base image plus the overlay zip unpacked at /project (what the
chart's overlay mode does in a cluster). Prints the URL; Ctrl-C stops it (--detach leaves it
running and prints the container id).
`;

export async function main(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      mode: { type: 'string', default: 'image' },
      port: { type: 'string', default: '8080' },
      route: { type: 'string' },
      env: { type: 'string', short: 'e', multiple: true, default: [] },
      tenant: { type: 'string' },
      detach: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help || positionals.length !== 1) {
    (values.help ? ctx.stdout : ctx.stderr).write(HELP);
    return values.help ? 0 : 2;
  }
  const issues = [];
  if (values.mode !== 'image' && values.mode !== 'overlay') issues.push({ path: '--mode', message: 'image or overlay' });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 1024 || port > 65535) issues.push({ path: '--port', message: `1024-65535, not ${values.port}` });
  const env: Record<string, string> = {};
  for (const e of values.env) {
    const i = e.indexOf('=');
    if (i < 1) issues.push({ path: '--env', message: `"${e}" is not K=V` });
    else env[e.slice(0, i)] = e.slice(i + 1);
  }
  if (issues.length) throw new InputError('invalid options', issues);
  const config = await ctx.config();
  const build = await latestBuild(config, values.tenant ?? config.defaults.tenant, positionals[0]!);
  const svc = await runBuild(config, build, {
    mode: values.mode as 'image' | 'overlay',
    port,
    route: values.route ?? `/${build.name}`,
    env,
  });
  if (values.detach) {
    ctx.stdout.write(`${svc.container}\n${svc.url}\n`);
    return 0;
  }
  ctx.stderr.write(`${build.service} (${values.mode} mode) at ${svc.url} — Ctrl-C stops it\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  ctx.stderr.write(await svc.logs());
  await svc.stop();
  return 0;
}
