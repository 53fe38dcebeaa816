/**
 * Progress on a terminal: one line per step with its duration, and the latest tool output
 * line while a step runs. Without a terminal (CI, pipes), plain lines.
 */
import type { Reporter, StepRecord } from '../domain/progress.js';

const ICON: Record<StepRecord['status'], string> = {
  pending: '·',
  running: '…',
  succeeded: '✔',
  failed: '✘',
  skipped: '-',
  cached: '✔',
};

export function terminalReporter(out: NodeJS.WritableStream & { isTTY?: boolean; columns?: number }, verbose = false): Reporter {
  const tty = Boolean(out.isTTY);
  let live = false;
  const clear = () => {
    if (live) out.write('\r\x1b[2K');
    live = false;
  };
  return {
    step(rec) {
      clear();
      const secs = rec.seconds !== undefined ? ` (${rec.seconds.toFixed(1)}s)` : '';
      const msg = rec.message ? `  ${rec.message}` : '';
      if (rec.status === 'running') {
        out.write(`${ICON.running} ${rec.name}${tty ? '' : '\n'}`);
        live = tty;
      } else {
        out.write(`${ICON[rec.status]} ${rec.name}${secs}${msg}\n`);
      }
    },
    log(step, line) {
      if (verbose) {
        clear();
        out.write(`  [${step}] ${line}\n`);
      } else if (tty) {
        const width = Math.max(20, (out.columns ?? 100) - step.length - 6);
        out.write(`\r\x1b[2K${ICON.running} ${step}  ${line.replace(/\s+/g, ' ').slice(0, width)}`);
        live = true;
      }
    },
  };
}
