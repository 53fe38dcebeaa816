/**
 * `svcbuild scan`: the scan pipeline step as a command (what a workflow pod runs): Trivy on
 * the image by digest, the gate against the base image's report, both reports attached to
 * the image. Writes `<outputs>/scan-summary` (the summary JSON) also when the gate fails, then exits
 * 7 (BuildError: never retried).
 */
import { parseArgs } from 'node:util';
import type { CliContext } from '../cli/context.js';
import { FlagIssues, dirFlag, refFlag, stepRegistryClient, writeOutput } from '../steps/common.js';
import { ScanGateError, describeSummary, scanStep, type ScanSummary } from './step.js';
import { SEVERITIES, type Severity } from './report.js';
import { resolveScanSettings } from './settings.js';
import { scanSkipReason } from './availability.js';

const USAGE = `usage: svcbuild scan --image=REPO@DIGEST --base=REPO@DIGEST [--threshold=SEVERITY]
                     [--outputs=DIR] [--json]

Scans the image with Trivy (by digest, from the registry), compares its findings with the
base image's report (scanning the base first when it has no report made with the same
vulnerability DB), and attaches the JSON report and a CycloneDX SBOM to the image as OCI
referrers. Exits 7 when the gate fails: a new finding at or above the threshold that no
scan.ignore entry of the configuration accepts. With scan.enabled false, or auto while Trivy
or its DB (scan.dbRepository, default <registry>/trivy-db:2) is missing, it writes
{"skipped": "<why>"} as the summary and exits 0.

options:
  --image REF          the built image, by digest
  --base REF           its base image, by digest
  --threshold SEV      ${SEVERITIES.join(', ')} (default: scan.threshold, HIGH)
  --outputs DIR        write DIR/scan-summary: the summary JSON (also when the gate fails)
  --json               print the summary as JSON
  -h, --help           show this help`;

export async function main(args: string[], ctx: CliContext): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      image: { type: 'string' },
      base: { type: 'string' },
      threshold: { type: 'string' },
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
  const config = await ctx.config();
  const host = config.registry.host;
  const issues = new FlagIssues('scan', USAGE);
  const image = refFlag(issues, 'image', issues.required(values, 'image'), host, { digest: 'required' });
  const base = refFlag(issues, 'base', issues.required(values, 'base'), host, { digest: 'required' });
  const threshold = values.threshold;
  if (threshold !== undefined && !(SEVERITIES as readonly string[]).includes(threshold))
    issues.add('threshold', `one of ${SEVERITIES.join(', ')}`);
  const outputs = values.outputs === undefined ? undefined : dirFlag(issues, 'outputs', values.outputs);
  issues.check();

  const settings = resolveScanSettings((config as { scan?: unknown }).scan, { registryHost: host, stateDir: config.stateDir });
  if (threshold !== undefined) settings.threshold = threshold as Severity;
  const refString = (r: { host: string; repo: string; digest?: string }) => `${r.host}/${r.repo}@${r.digest}`;
  const emit = async (summary: ScanSummary) => {
    if (outputs) await writeOutput(outputs, 'scan-summary', JSON.stringify(summary));
    if (values.json) ctx.stdout.write(JSON.stringify(summary) + '\n');
    else ctx.stdout.write(`${describeSummary(summary)}\nreport ${summary.report}\nsbom ${summary.sbom}\n`);
  };
  // scan.enabled (false, or auto without Trivy or its DB): the step reports itself skipped.
  const skipped = await scanSkipReason(settings, stepRegistryClient(config), host);
  if (skipped) {
    if (outputs) await writeOutput(outputs, 'scan-summary', JSON.stringify({ skipped }));
    ctx.stdout.write(values.json ? JSON.stringify({ skipped }) + '\n' : `${skipped}\n`);
    return 0;
  }
  try {
    const summary = await scanStep({
      client: stepRegistryClient(config),
      registry: config.registry,
      settings,
      image: refString(image!),
      base: refString(base!),
      log: (l) => ctx.stderr.write(`${l}\n`),
    });
    await emit(summary);
    return 0;
  } catch (e) {
    if (e instanceof ScanGateError) await emit(e.summary);
    throw e;
  }
}
