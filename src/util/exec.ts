/**
 * The one wrapper around child_process: runs a tool, captures its output, streams its
 * lines to an optional listener, and turns a failure into an error carrying the tool's own
 * words (the tail of its output), which is what a user needs to fix their input.
 */
import { spawn } from 'node:child_process';
import { UpstreamError } from '../errors.js';

export interface ExecOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Written to the process's stdin, then closed. */
  input?: string | Buffer;
  /** Called with every line the tool prints (stdout and stderr). */
  onLine?: (line: string) => void;
  /** Kill the process after this many milliseconds. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  /** stdout and stderr interleaved as printed. */
  output: string;
  code: number;
}

/** Runs `cmd args`; resolves with its output whatever its exit code. */
export function run(cmd: string, args: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
      signal: opts.signal,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const all: string[] = [];
    let timer: NodeJS.Timeout | undefined;
    if (opts.timeoutMs) timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    const lineSplitter = () => {
      let rest = '';
      return (chunk: Buffer) => {
        const text = rest + chunk.toString('utf8');
        const lines = text.split('\n');
        rest = lines.pop() ?? '';
        for (const line of lines) {
          all.push(line);
          opts.onLine?.(line);
        }
      };
    };
    const onOut = lineSplitter();
    const onErr = lineSplitter();
    child.stdout.on('data', (c: Buffer) => {
      out.push(c);
      onOut(c);
    });
    child.stderr.on('data', (c: Buffer) => {
      err.push(c);
      onErr(c);
    });
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (timer) clearTimeout(timer);
      if (e.code === 'ENOENT') {
        reject(new UpstreamError(`${cmd} is not installed or not on PATH; run scripts/setup.sh to install it`));
      } else reject(e);
    });
    child.on('close', (code) => {
      if (timer) clearTimeout(timer);
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      // flush partial last lines
      onOut(Buffer.from('\n'));
      onErr(Buffer.from('\n'));
      resolve({ stdout, stderr, output: all.join('\n'), code: code ?? -1 });
    });
    if (opts.input !== undefined) child.stdin.end(opts.input);
    else child.stdin.end();
  });
}

/** Runs `cmd args` and throws an UpstreamError with the tail of its output unless it exits 0. */
export async function runOk(cmd: string, args: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const res = await run(cmd, args, opts);
  if (res.code !== 0) {
    throw new UpstreamError(`${cmd} ${args[0] ?? ''} failed (exit ${res.code}):\n${tail(res.output, 40)}`, undefined, {
      code: res.code,
    });
  }
  return res;
}

/** The last `n` non-empty lines of a text. */
export function tail(text: string, n: number): string {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .slice(-n)
    .join('\n');
}
