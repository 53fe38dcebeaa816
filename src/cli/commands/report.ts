/**
 * `svcbuild report`: the exit handler's final status line, one JSON object on stdout (what
 * the archived logs keep of a build's end).
 */
import { parseArgs } from 'node:util';
import { FlagIssues } from '../../steps/common.js';
import type { CliContext } from '../context.js';

const USAGE = `usage: svcbuild report --status=STATUS [--build-id=ID] [--failures=JSON]

Prints the final status of a build as one JSON line:
  {"event":"build-finished","status":...,"succeeded":...,"buildId":...,"failures":[...]}

options:
  --status S      the workflow status (Succeeded, Failed, Error)
  --build-id ID   the build id
  --failures J    Argo's {{workflow.failures}}: a JSON list of the failed steps
  -h, --help      show this help`;

export interface StatusReport {
  event: 'build-finished';
  status: string;
  succeeded: boolean;
  buildId?: string;
  failures: unknown[];
  at: string;
}

/** Pure: the status line. Unparseable failures are kept as text rather than lost. */
export function statusReport(status: string, buildId: string | undefined, failures: string | undefined, now: Date): StatusReport {
  let list: unknown[] = [];
  const text = (failures ?? '').trim();
  if (text !== '' && text !== 'null') {
    try {
      const parsed: unknown = JSON.parse(text);
      list = Array.isArray(parsed) ? parsed : [parsed];
    } catch {
      list = [text];
    }
  }
  const out: StatusReport = { event: 'build-finished', status, succeeded: status === 'Succeeded', failures: list, at: now.toISOString() };
  if (buildId) out.buildId = buildId;
  return out;
}

export async function main(args: string[], ctx: CliContext): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      status: { type: 'string' },
      'build-id': { type: 'string' },
      failures: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    ctx.stdout.write(USAGE + '\n');
    return 0;
  }
  const issues = new FlagIssues('report', USAGE);
  const status = issues.required(values, 'status', 'required: the workflow status');
  if (status !== undefined && !/^[A-Za-z]{1,32}$/.test(status))
    issues.add('status', `"${status}" is not a workflow status (Succeeded, Failed, Error)`);
  const buildId = values['build-id'];
  if (buildId !== undefined && buildId !== '' && !/^[A-Za-z0-9-]{1,64}$/.test(buildId))
    issues.add('build-id', `"${buildId}" must be 1 to 64 letters, digits or hyphens`);
  issues.check();
  ctx.stdout.write(JSON.stringify(statusReport(status!, buildId || undefined, values.failures, new Date())) + '\n');
  return 0;
}
