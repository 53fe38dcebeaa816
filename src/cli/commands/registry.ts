/**
 * `svcbuild registry start|stop`: the local default's OCI registry on loopback.
 * `svcbuild registry delete|tag`: the pipeline's registry housekeeping (the exit handler
 * deletes an unpromoted build; promotion tags a build by digest).
 */
import { parseArgs } from 'node:util';
import type { CliContext } from '../context.js';
import { startLocalRegistry, stopLocalRegistry } from '../../executors/local/registry-server.js';
import { InputError, NotFoundError } from '../../errors.js';
import { FlagIssues, refFlag, stepRegistryClient } from '../../steps/common.js';
import { deleteReference, promote } from '../../steps/registry.js';

const HELP = `usage: svcbuild registry start|stop
       svcbuild registry delete --ref=REPO:TAG|REPO@DIGEST [--missing-ok] [--json]
       svcbuild registry tag --ref=REPO@DIGEST --tag=TAG [--json]

start   runs Debian's docker-registry on the configured loopback host (default 127.0.0.1:5000),
        with its data under the state directory; does nothing if one already answers there
stop    stops the registry that \`start\` started
delete  deletes a tag (the image too when no other tag points at it; a promoted image keeps
        its other tags) or, by digest, a manifest. A missing reference fails (exit 4) unless
        --missing-ok
tag     tags the manifest REPO@DIGEST as TAG in the same repository (promotion)

A reference without a host is taken on the configured registry.
`;

const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

export async function main(args: string[], ctx: CliContext): Promise<number> {
  const { positionals, values } = parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      ref: { type: 'string' },
      tag: { type: 'string' },
      'missing-ok': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  if (values.help || positionals.length !== 1) {
    ctx.stdout.write(HELP);
    return values.help ? 0 : 2;
  }
  const sub = positionals[0];
  const config = await ctx.config();
  if (sub === 'start' || sub === 'stop') {
    for (const flag of ['ref', 'tag'] as const) {
      if (values[flag] !== undefined)
        throw new InputError(`svcbuild registry ${sub} takes no --${flag}`, [{ path: `--${flag}`, message: `not an option of ${sub}` }]);
    }
  }
  if (sub === 'start') {
    const state = await startLocalRegistry(config.stateDir, config.registry.host);
    ctx.stdout.write(`registry ${config.registry.host}: ${state}\n`);
    return 0;
  }
  if (sub === 'stop') {
    ctx.stdout.write((await stopLocalRegistry(config.stateDir)) ? 'registry stopped\n' : 'no registry started by svcbuild\n');
    return 0;
  }
  if (sub === 'delete') {
    const issues = new FlagIssues('registry delete', HELP);
    const ref = refFlag(
      issues,
      'ref',
      issues.required(values, 'ref', 'required: repository:tag or repository@digest'),
      config.registry.host,
    );
    if (ref && ref.tag && ref.digest) issues.add('ref', 'give a tag or a digest, not both');
    if (values.tag !== undefined) issues.add('tag', 'not an option of delete');
    issues.check();
    const res = await deleteReference(stepRegistryClient(config), ref!);
    const name = `${ref!.host}/${ref!.repo}${ref!.digest ? `@${ref!.digest}` : `:${ref!.tag}`}`;
    if (res.result === 'missing' && !values['missing-ok']) {
      throw new NotFoundError(`${name} does not exist (pass --missing-ok to accept that)`);
    }
    if (values.json) ctx.stdout.write(JSON.stringify({ ref: name, ...res }) + '\n');
    else if (res.result === 'missing') ctx.stdout.write(`${name}: not there, nothing to delete\n`);
    else if (res.imageDeleted) ctx.stdout.write(`deleted ${name} (${res.digest})\n`);
    else ctx.stdout.write(`deleted tag ${name}; ${res.digest} is kept by ${res.keptBy.join(', ')}\n`);
    return 0;
  }
  if (sub === 'tag') {
    const issues = new FlagIssues('registry tag', HELP);
    const ref = refFlag(issues, 'ref', issues.required(values, 'ref', 'required: repository@digest'), config.registry.host, {
      digest: 'required',
      tag: 'forbidden',
    });
    const tag = issues.required(values, 'tag');
    if (tag !== undefined && !TAG_RE.test(tag)) issues.add('tag', `"${tag}" must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`);
    if (values['missing-ok']) issues.add('missing-ok', 'not an option of tag');
    issues.check();
    const digest = await promote(stepRegistryClient(config), { ...ref!, digest: ref!.digest! }, tag!);
    const name = `${ref!.host}/${ref!.repo}:${tag}`;
    if (values.json) ctx.stdout.write(JSON.stringify({ ref: name, digest }) + '\n');
    else ctx.stdout.write(`tagged ${name} -> ${digest}\n`);
    return 0;
  }
  ctx.stderr.write(HELP);
  return 2;
}
