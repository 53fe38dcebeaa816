/**
 * `svcbuild source`: the workflow's first step. Fetches the project (archive artifact or git),
 * checks it, pushes it as a source artifact and writes its digest to `<outputs>/source-digest`.
 */
import { parseArgs } from 'node:util';
import { InputError } from '../../errors.js';
import { checkGitUrl } from '../../executors/local/executor.js';
import { runSourceStep, checkGitSpec, type SourceSpec } from '../../steps/source.js';
import { FlagIssues, dirFlag, refFlag, stepRegistryClient, writeOutput } from '../../steps/common.js';
import type { CliContext } from '../context.js';

const USAGE = `usage: svcbuild source --kind=archive|git [--archive-ref=REF@DIGEST]
                       [--git-url=URL --git-ref=REF [--git-subdir=DIR]]
                       --push=REPO:TAG --outputs=DIR [--json]

Fetches the project, checks it (archive extraction rules, links, devices, sizes; the
project kind is detected), and pushes it as a tar.gz OCI artifact
(application/vnd.svcbuild.source.v1) to --push. Writes DIR/source-digest.

options:
  --kind K          archive (an uploaded archive pushed as an artifact) or git
  --archive-ref R   the archive artifact, by digest (kind archive; empty for git)
  --git-url URL     https:// repository (http:// and git:// on loopback only; kind git)
  --git-ref REF     branch, tag or commit (kind git)
  --git-subdir DIR  directory of the project inside the repository (default: its root)
  --push REF        repository:tag the source artifact is pushed to
  --outputs DIR     directory of the output files
  --json            print the result as JSON
  -h, --help        show this help`;

export async function main(args: string[], ctx: CliContext): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      kind: { type: 'string' },
      'archive-ref': { type: 'string' },
      'git-url': { type: 'string' },
      'git-ref': { type: 'string' },
      'git-subdir': { type: 'string' },
      push: { type: 'string' },
      outputs: { type: 'string' },
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
  const { registry } = await ctx.config();
  const issues = new FlagIssues('source', USAGE);
  const kind = issues.required(values, 'kind', 'required: archive or git');
  if (kind !== undefined && kind !== 'archive' && kind !== 'git') issues.add('kind', `"${kind}" is not archive or git`);
  const push = refFlag(issues, 'push', issues.required(values, 'push'), registry.host, { tag: 'required', digest: 'forbidden' });
  const outputs = dirFlag(issues, 'outputs', issues.required(values, 'outputs'));
  const archiveRef = values['archive-ref'] ?? '';
  const gitUrl = values['git-url'] ?? '';
  const gitRef = values['git-ref'] ?? '';
  const gitSubdir = values['git-subdir'] ?? '';
  let source: SourceSpec | undefined;
  if (kind === 'archive') {
    for (const [flag, v] of [
      ['git-url', gitUrl],
      ['git-ref', gitRef],
      ['git-subdir', gitSubdir],
    ] as const) {
      if (v !== '') issues.add(flag, 'must be empty when --kind=archive');
    }
    const ref = refFlag(issues, 'archive-ref', issues.required(values, 'archive-ref', 'required when --kind=archive'), registry.host, {
      digest: 'required',
    });
    if (ref?.digest) source = { kind: 'archive', archive: { ...ref, digest: ref.digest } };
  } else if (kind === 'git') {
    if (archiveRef !== '') issues.add('archive-ref', 'must be empty when --kind=git');
    const url = issues.required(values, 'git-url', 'required when --kind=git');
    const ref = issues.required(values, 'git-ref', 'required when --kind=git (a branch, tag or commit)');
    if (url !== undefined) {
      try {
        checkGitUrl(url);
      } catch (e) {
        if (!(e instanceof InputError)) throw e;
        issues.add('git-url', e.issues[0]?.message ?? e.message);
      }
    }
    if (ref !== undefined) for (const p of checkGitSpec(ref, gitSubdir)) issues.add(p.flag, p.message);
    if (url !== undefined && ref !== undefined) source = { kind: 'git', url, ref, subdir: gitSubdir };
  }
  issues.check();

  const config = await ctx.config();
  const res = await runSourceStep({ config, client: stepRegistryClient(config), source: source!, push: { ...push!, tag: push!.tag! } });
  await writeOutput(outputs!, 'source-digest', res.digest);
  const ref = `${push!.host}/${push!.repo}@${res.digest}`;
  if (values.json) ctx.stdout.write(JSON.stringify({ ref, ...res }) + '\n');
  else
    ctx.stdout.write(
      `source ${ref}: ${res.kind} project, ${res.files} files, ${res.bytes} bytes${res.commit ? `, commit ${res.commit}` : ''}\n`,
    );
  return 0;
}
