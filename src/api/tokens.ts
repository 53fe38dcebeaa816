/**
 * Bearer tokens mapped to tenants. Only a sha256 of each token is stored, so the file
 * leaks no usable token; a token is shown once, when it is created.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { InputError } from '../errors.js';

export const TENANT_RE = /^[a-z]([a-z0-9-]{0,14}[a-z0-9])?$/;

interface TokenEntry {
  hash: string;
  tenant: string;
  createdAt: string;
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export class TokenStore {
  private byHash = new Map<string, TokenEntry>();
  private loaded = false;

  constructor(private readonly file: string) {}

  private async load(): Promise<void> {
    if (this.loaded) return;
    try {
      const data = JSON.parse(await readFile(this.file, 'utf8')) as { tokens: TokenEntry[] };
      this.byHash = new Map(data.tokens.map((t) => [t.hash, t]));
    } catch {
      this.byHash = new Map();
    }
    this.loaded = true;
  }

  /** Creates a token for a tenant; returns the token itself (never stored). */
  async create(tenant: string): Promise<string> {
    if (!TENANT_RE.test(tenant)) {
      throw new InputError('invalid tenant', [
        { path: 'tenant', message: `"${tenant}": 1-16 characters, a lower-case letter first, then a-z, 0-9 or "-", not ending with "-"` },
      ]);
    }
    // Re-read so tokens created by another process (the CLI) are kept.
    this.loaded = false;
    await this.load();
    const token = `svcb_${randomBytes(24).toString('base64url')}`;
    this.byHash.set(hashToken(token), { hash: hashToken(token), tenant, createdAt: new Date().toISOString() });
    await mkdir(dirname(this.file), { recursive: true });
    const tmp = `${this.file}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify({ tokens: [...this.byHash.values()] }, null, 2), { mode: 0o600 });
    await rename(tmp, this.file);
    return token;
  }

  /** The tenant of a token, or undefined. Unknown tokens re-read the file once (new tokens). */
  async tenantOf(token: string): Promise<string | undefined> {
    await this.load();
    const h = hashToken(token);
    let e = this.byHash.get(h);
    if (!e) {
      this.loaded = false;
      await this.load();
      e = this.byHash.get(h);
    }
    return e?.tenant;
  }
}
