/** How the pipeline tells its caller what it is doing: per-step status and tool output. */

export type StepStatus = 'pending' | 'running' | 'succeeded' | 'failed' | 'skipped' | 'cached';

export interface StepRecord {
  name: string;
  status: StepStatus;
  seconds?: number;
  /** One line: what the step did or why it failed. */
  message?: string;
}

export interface Reporter {
  step(record: StepRecord): void;
  /** A line of tool output (buildah, uv, npm, helm) belonging to a step. */
  log(step: string, line: string): void;
}

/** A reporter that drops everything; for callers that only want the result. */
export const silentReporter: Reporter = { step() {}, log() {} };

/**
 * Runs `fn` as the named step: reports running, then succeeded with its duration, or failed
 * with the error's first line; records the step in `steps`.
 */
export async function timedStep<T>(
  steps: StepRecord[],
  reporter: Reporter,
  name: string,
  fn: () => Promise<T>,
  describe?: (result: T) => string | undefined,
  /** The final status of a step that ran without error (default succeeded; e.g. skipped). */
  statusOf?: (result: T) => StepStatus,
): Promise<T> {
  const started = performance.now();
  const rec: StepRecord = { name, status: 'running' };
  steps.push(rec);
  reporter.step({ ...rec });
  try {
    const result = await fn();
    rec.status = statusOf?.(result) ?? 'succeeded';
    rec.seconds = round((performance.now() - started) / 1000);
    rec.message = describe?.(result);
    reporter.step({ ...rec });
    return result;
  } catch (err) {
    rec.status = 'failed';
    rec.seconds = round((performance.now() - started) / 1000);
    rec.message = err instanceof Error ? err.message.split('\n')[0] : String(err);
    reporter.step({ ...rec });
    throw err;
  }
}

function round(s: number): number {
  return Math.round(s * 100) / 100;
}
