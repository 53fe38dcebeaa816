/** `svcbuild scan-base [NAME...]`: scans the base images again and attaches fresh reports. */
import { parseArgs } from 'node:util';
import type { StepRecord } from '../../domain/progress.js';
import { createLocalBuilder, registryClient } from '../../executors/local/index.js';
import { countBySeverity } from '../../scan/report.js';
import { resolveScanSettings } from '../../scan/settings.js';
import { countsLine, scanAndAttach } from '../../scan/step.js';
import type { CliContext } from '../context.js';
import { terminalReporter } from '../progress.js';

const HELP = `usage: svcbuild scan-base [NAME...] [--json]

Scans the named base images (default: the whole catalog) with Trivy and the current
vulnerability DB, and attaches the report and a CycloneDX SBOM to each image as OCI
referrers. Service builds compare their findings with these reports; run this when the DB
has changed (builds also scan a base themselves when its report is from another DB).
A base image missing from the registry is built first.
`;

export async function main(args: string[], ctx: CliContext): Promise<number> {
  const { positionals, values } = parseArgs({
    args,
    allowPositionals: true,
    options: { help: { type: 'boolean', short: 'h' }, json: { type: 'boolean' }, verbose: { type: 'boolean', short: 'v' } },
  });
  if (values.help) {
    ctx.stdout.write(HELP);
    return 0;
  }
  const config = await ctx.config();
  const settings = resolveScanSettings((config as { scan?: unknown }).scan, {
    registryHost: config.registry.host,
    stateDir: config.stateDir,
  });
  const reporter = terminalReporter(ctx.stderr, Boolean(values.verbose));
  const builder = createLocalBuilder(config, reporter, ctx.home);
  const client = registryClient(config);
  const names = positionals.length ? positionals : Object.keys(config.baseImages);
  for (const name of names) builder.bases.spec(name);
  const steps: StepRecord[] = [];
  const out = [];
  for (const name of names) {
    const base = await builder.bases.ensure(name, reporter, steps);
    const scanned = await scanAndAttach(
      { client, registry: config.registry, settings, log: (l) => reporter.log(`scan-base:${name}`, l) },
      base.ref,
    );
    const counts = countBySeverity(scanned.report.findings);
    out.push({ name, image: base.ref, report: scanned.reportDigest, sbom: scanned.sbomDigest, counts, db: scanned.db });
    if (!values.json)
      ctx.stdout.write(`${name.padEnd(14)} ${base.ref}\n${''.padEnd(14)} report ${scanned.reportDigest}: ${countsLine(counts)}\n`);
  }
  if (values.json) ctx.stdout.write(JSON.stringify(out, null, 2) + '\n');
  return 0;
}
