/**
 * Image references: `host[:port]/repo/path[:tag][@sha256:<hex>]`. Pure.
 */
import { InputError } from '../errors.js';

/** A parsed image reference. At least one of `tag` and `digest` is set. */
export interface ImageRef {
  /** Registry host[:port], e.g. `127.0.0.1:5000`. */
  host: string;
  /** Repository path under the host, e.g. `svcbuild/python-3.13`. */
  repo: string;
  tag?: string;
  /** `sha256:<64 hex>`. */
  digest?: string;
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const HOST =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/** True for a `sha256:<64 lower-case hex>` digest. */
export function isDigest(s: string): boolean {
  return DIGEST.test(s);
}

/**
 * Parses an image reference, naming the reference in the InputError when it is malformed.
 * The first path component is the host when it contains `.` or `:` or is `localhost`;
 * otherwise `defaultHost` is used (and the reference is rejected without one).
 *
 * @example parseImageRef('127.0.0.1:5000/svcbuild/x@sha256:…') // { host: '127.0.0.1:5000', repo: 'svcbuild/x', digest: 'sha256:…' }
 */
export function parseImageRef(ref: string, defaultHost?: string): ImageRef {
  const fail = (why: string): never => {
    throw new InputError(`invalid image reference "${ref}": ${why}`, [{ path: 'image', message: `"${ref}": ${why}` }]);
  };
  if (ref.trim() !== ref || ref === '') fail('empty or surrounded by spaces');
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) fail(`digest "${digest}" is not sha256:<64 lower-case hex>`);
  }
  let host: string | undefined;
  const slash = rest.indexOf('/');
  const first = slash >= 0 ? rest.slice(0, slash) : '';
  if (slash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost' || first.startsWith('['))) {
    host = first;
    rest = rest.slice(slash + 1);
    if (!HOST.test(host)) fail(`host "${host}" is not a host[:port]`);
  } else {
    host = defaultHost;
    if (!host) fail('no registry host (expected host[:port]/repository[:tag][@digest])');
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon >= 0) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) fail(`tag "${tag}" must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`);
  }
  if (rest === '') fail('no repository');
  for (const c of rest.split('/')) {
    if (!COMPONENT.test(c)) fail(`repository component "${c}" must be lower-case letters and digits separated by . _ __ or -`);
  }
  if (rest.length > 255) fail('repository longer than 255 characters');
  if (tag === undefined && digest === undefined) fail('neither a tag nor a digest');
  const out: ImageRef = { host: host as string, repo: rest };
  if (tag !== undefined) out.tag = tag;
  if (digest !== undefined) out.digest = digest;
  return out;
}

/** The reference a manifest is fetched by: the digest when there is one, else the tag. */
export function refOf(ref: ImageRef): string {
  return ref.digest ?? (ref.tag as string);
}

/** Formats a reference back to `host/repo[:tag][@digest]`. */
export function formatImageRef(ref: ImageRef): string {
  return `${ref.host}/${ref.repo}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}
