/** What every CLI command receives: parsed config and the streams to talk through. */
import type { Config } from '../config/schema.js';

export interface CliContext {
  /** Loaded lazily: commands that need no config (help, version) never read it. */
  config(): Promise<Config>;
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  /** Directory of the svcbuild installation (holds base-images/, charts/, workflow-templates/). */
  home: string;
}

/** A command module: `export async function main(args, ctx): Promise<number>` (the exit code). */
export type CommandMain = (args: string[], ctx: CliContext) => Promise<number>;
