/**
 * The error classes of svcbuild. Business code throws these; the CLI maps them to exit
 * codes and the API to HTTP statuses, each in one place.
 */

/** One problem of an input, with the dotted path of the field it concerns. */
export interface Issue {
  path: string;
  message: string;
}

/** Base class: a message for people plus a stable machine-readable code. */
export class SvcbuildError extends Error {
  readonly code: string = 'internal';
  readonly status: number = 500;
  readonly exitCode: number = 1;
  constructor(
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** Bad input (400, exit 2). Carries every problem found, each with its field path. */
export class InputError extends SvcbuildError {
  override readonly code = 'invalid_input';
  override readonly status = 400;
  override readonly exitCode = 2;
  readonly issues: Issue[];
  constructor(message: string, issues: Issue[] = []) {
    super(issues.length ? `${message}\n${issues.map((i) => `  - ${i.path}: ${i.message}`).join('\n')}` : message, issues);
    this.issues = issues;
  }
}

/** Missing or wrong credentials (401). */
export class AuthError extends SvcbuildError {
  override readonly code = 'unauthorized';
  override readonly status = 401;
  override readonly exitCode = 3;
}

/** Not found, also for another tenant's objects (404). */
export class NotFoundError extends SvcbuildError {
  override readonly code = 'not_found';
  override readonly status = 404;
  override readonly exitCode = 4;
}

/** The request conflicts with the current state (409). */
export class ConflictError extends SvcbuildError {
  override readonly code = 'conflict';
  override readonly status = 409;
  override readonly exitCode = 5;
}

/** A part we depend on (registry, Kubernetes, buildah, helm) failed (502). */
export class UpstreamError extends SvcbuildError {
  override readonly code = 'upstream';
  override readonly status = 502;
  override readonly exitCode = 6;
  constructor(
    message: string,
    readonly upstreamStatus?: number,
    details?: unknown,
  ) {
    super(message, details);
  }
}

/**
 * A step of the pipeline failed because of the project (its dependencies do not resolve,
 * it changed base files, its scan gate failed). 422 over HTTP, exit 7.
 */
export class BuildError extends SvcbuildError {
  override readonly code = 'build_failed';
  override readonly status = 422;
  override readonly exitCode = 7;
  constructor(
    message: string,
    readonly step: string,
    details?: unknown,
  ) {
    super(message, details);
  }
}

/** The build was cancelled by its owner (409 when acted on, exit 130). */
export class CancelledError extends SvcbuildError {
  override readonly code = 'cancelled';
  override readonly status = 409;
  override readonly exitCode = 130;
  constructor(message = 'the build was cancelled') {
    super(message);
  }
}

/** A bug or an unexpected state (500). */
export class InternalError extends SvcbuildError {}

/** Throws one InputError carrying all issues, if there are any. */
export function throwIfIssues(message: string, issues: Issue[]): void {
  if (issues.length > 0) throw new InputError(message, issues);
}
