/**
 * `svcbuild context`: the build pod's init container. Writes the build context of a source
 * artifact into --out: the project, its Dockerfile (FROM the base by digest) and .dockerignore.
 */
import { parseArgs } from 'node:util';
import { KINDS } from '../../config/schema.js';
import { runContextStep } from '../../steps/context.js';
import { FlagIssues, dirFlag, refFlag, stepRegistryClient } from '../../steps/common.js';
import type { CliContext } from '../context.js';

const USAGE = `usage: svcbuild context --source=REPO@DIGEST --language=KIND --base=REF@DIGEST --out=DIR [--json]

Pulls the source artifact (as \`svcbuild source\` pushed it), extracts it with the archive
checks into DIR (empty or not existing), runs the provider's checks and plan, and writes
DIR/Dockerfile (FROM the base by digest) and DIR/.dockerignore (keeping the generated files
out of the image).

options:
  --source REF    the source artifact, by digest
  --language K    the project kind: ${KINDS.join(', ')}
  --base REF      the base image, by digest
  --out DIR       the build context directory (absolute)
  --json          print the plan as JSON
  -h, --help      show this help`;

export async function main(args: string[], ctx: CliContext): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      source: { type: 'string' },
      language: { type: 'string' },
      base: { type: 'string' },
      out: { type: 'string' },
      json: { type: 'boolean', default: false },
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
  const host = config.registry.host;
  const issues = new FlagIssues('context', USAGE);
  const source = refFlag(issues, 'source', issues.required(values, 'source'), host, { digest: 'required' });
  const language = issues.required(values, 'language', `required: one of ${KINDS.join(', ')}`);
  if (language !== undefined && !(KINDS as readonly string[]).includes(language))
    issues.add('language', `"${language}" is not one of ${KINDS.join(', ')}`);
  else if (language !== undefined && !(config.enabledKinds as readonly string[]).includes(language)) {
    issues.add('language', `"${language}" is not enabled here (enabled: ${config.enabledKinds.join(', ')})`);
  }
  const base = refFlag(issues, 'base', issues.required(values, 'base'), host, { digest: 'required' });
  const out = dirFlag(issues, 'out', issues.required(values, 'out'));
  issues.check();

  const res = await runContextStep({
    config,
    client: stepRegistryClient(config),
    source: { ...source!, digest: source!.digest! },
    language: language!,
    base: { ...base!, digest: base!.digest! },
    out: out!,
  });
  if (values.json) {
    ctx.stdout.write(
      JSON.stringify({
        kind: res.kind,
        base: res.base,
        port: res.port,
        files: res.files,
        entrypoint: res.plan.entrypoint,
        notes: res.plan.notes,
      }) + '\n',
    );
  } else {
    ctx.stdout.write(`context ${out}: ${res.kind} project, ${res.files} files, FROM ${res.base}; ${res.plan.notes.join('; ')}\n`);
  }
  return 0;
}
