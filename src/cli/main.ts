/**
 * The svcbuild CLI: a thin command table. Commands load lazily, and the one top-level
 * catch below turns our error classes into a message and an exit code.
 */
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SvcbuildError, InputError } from '../errors.js';
import type { CliContext, CommandMain } from './context.js';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';

interface CommandEntry {
  summary: string;
  load: () => Promise<{ main: CommandMain }>;
}

const COMMANDS: Record<string, CommandEntry> = {
  build: { summary: 'Build a project locally: image, overlay zip and chart, in one call', load: () => import('./commands/build.js') },
  overlay: { summary: 'Compute the overlay zip of an image on top of its base image', load: () => import('./commands/overlay.js') },
  base: { summary: 'Build, list or inspect the curated base images', load: () => import('./commands/base.js') },
  registry: {
    summary: 'Start the local OCI registry on loopback; delete or tag (promote) images',
    load: () => import('./commands/registry.js'),
  },
  run: { summary: 'Start a built service on this machine (image, or base image + overlay)', load: () => import('./commands/run.js') },
  rebase: { summary: 'Move a service onto a new base image without rebuilding it', load: () => import('./commands/rebase.js') },
  serve: { summary: 'Start the HTTP API', load: () => import('./commands/serve.js') },
  submit: { summary: 'Submit a project to a svcbuild server (--watch to follow it)', load: () => import('./commands/submit.js') },
  render: { summary: 'Render the WorkflowTemplates as YAML (for kubectl or GitOps)', load: () => import('./commands/render.js') },
  install: {
    summary: 'Install the WorkflowTemplates and RBAC into a cluster (server-side apply)',
    load: () => import('./commands/install.js'),
  },
  source: { summary: 'Pipeline step: fetch, check and push the project as a source artifact', load: () => import('./commands/source.js') },
  context: {
    summary: 'Pipeline step: write the build context (project, Dockerfile) of a source artifact',
    load: () => import('./commands/context.js'),
  },
  'build-image': {
    summary: 'Pipeline step: build and push the image with buildah (the Kaniko swap)',
    load: () => import('./commands/build-image.js'),
  },
  publish: {
    summary: 'Pipeline step: push the service chart of a build and promote its image',
    load: () => import('./commands/publish.js'),
  },
  deploy: { summary: 'Pipeline step: helm upgrade --install the published chart', load: () => import('./commands/deploy.js') },
  report: { summary: "Pipeline step: print a build's final status as one JSON line", load: () => import('./commands/report.js') },
  scan: {
    summary: 'Pipeline step: scan an image with Trivy, gate it against its base, attach the reports',
    load: () => import('../scan/cli.js'),
  },
  'scan-base': { summary: 'Scan the base images again and attach fresh reports', load: () => import('./commands/scan-base.js') },
  token: { summary: 'Create API tokens for tenants', load: () => import('./commands/token.js') },
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  return [
    'usage: svcbuild <command> [options]',
    '',
    'commands:',
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    'Run `svcbuild <command> --help` for the options of a command.',
  ].join('\n');
}

/** The installation directory: two levels above this file, in src/ or dist/ alike. */
export const HOME = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export async function cli(argv: string[], ctx?: Partial<CliContext>): Promise<number> {
  const stderr = ctx?.stderr ?? process.stderr;
  const stdout = ctx?.stdout ?? process.stdout;
  let cached: Promise<Config> | undefined;
  const context: CliContext = {
    config: ctx?.config ?? (() => (cached ??= loadConfig({ cwd: process.cwd(), env: process.env, home: HOME }))),
    stdout,
    stderr,
    home: ctx?.home ?? HOME,
  };
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    stdout.write(usage() + '\n');
    return name ? 0 : 2;
  }
  const entry = COMMANDS[name];
  if (!entry) {
    stderr.write(`svcbuild: unknown command "${name}"\n\n${usage()}\n`);
    return 2;
  }
  try {
    const mod = await entry.load();
    return await mod.main(rest, context);
  } catch (err) {
    if (err instanceof SvcbuildError) {
      stderr.write(`svcbuild ${name}: error: ${err.message}\n`);
      return err.exitCode;
    }
    if (err instanceof Error && 'code' in err && typeof err.code === 'string' && err.code.startsWith('ERR_PARSE_ARGS')) {
      stderr.write(`svcbuild ${name}: error: ${err.message}\nRun \`svcbuild ${name} --help\`.\n`);
      return new InputError(err.message).exitCode;
    }
    stderr.write(`svcbuild ${name}: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 1;
  }
}
