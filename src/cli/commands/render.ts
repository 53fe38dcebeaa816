/** `svcbuild render [--out DIR]`: the Argo WorkflowTemplates as plain YAML for kubectl or GitOps. */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { CliContext } from '../context.js';
import { readTemplateSources, renderWorkflowTemplateFiles, renderWorkflowTemplatesYaml, settingsFromConfig } from '../../render/index.js';

const HELP = `usage: svcbuild render [--out DIR] [--step-image REF] [--builder kaniko|buildah]

Renders the WorkflowTemplates of workflow-templates/ from this installation's config.
Without --out the YAML stream goes to stdout (\`svcbuild render | kubectl apply -n <ns> -f -\`);
with --out each template is written to DIR/<name>.yaml.

  --out DIR            write one file per WorkflowTemplate into DIR
  --step-image REF     the svcbuild step image (default <registry>/<namespace>/svcbuild:<version>)
  --builder ENGINE     kaniko (default) or buildah
`;

export async function main(args: string[], ctx: CliContext): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      out: { type: 'string' },
      'step-image': { type: 'string' },
      builder: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help || positionals.length) {
    ctx.stdout.write(HELP);
    return values.help ? 0 : 2;
  }
  const config = await ctx.config();
  const settings = settingsFromConfig(config, {
    ...(values['step-image'] ? { stepImage: values['step-image'] } : {}),
    ...(values.builder ? { builder: { engine: values.builder as 'kaniko' } } : {}),
  });
  const sources = readTemplateSources(join(ctx.home, 'workflow-templates'));
  if (!values.out) {
    ctx.stdout.write(renderWorkflowTemplatesYaml(settings, sources));
    return 0;
  }
  await mkdir(values.out, { recursive: true });
  for (const t of renderWorkflowTemplateFiles(settings, sources)) {
    await writeFile(join(values.out, t.file), t.yaml);
    ctx.stdout.write(`${join(values.out, t.file)}\n`);
  }
  return 0;
}
