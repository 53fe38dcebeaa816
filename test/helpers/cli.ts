/** Runs the real svcbuild CLI as a user would, in a child process. */
import { join, resolve } from 'node:path';
import { run, type ExecResult } from '../../src/util/exec.js';

export const ROOT = resolve(import.meta.dirname, '..', '..');

export async function svcbuild(args: string[], env: Record<string, string> = {}): Promise<ExecResult> {
  return run(process.execPath, [join(ROOT, 'bin', 'svcbuild.js'), ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    timeoutMs: 900_000,
  });
}
