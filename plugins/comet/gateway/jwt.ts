import { readFile } from 'node:fs/promises';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JWK, type JWTVerifyOptions } from 'jose';
import type { Secret } from '../../sdk/secret.ts';

export interface JwtConfig {
  /** Public keys (JWK) for asymmetric tokens. */
  keys?: JWK[];
  /** A JWKS file (`{"keys": [...]}`), read when the gateway starts. */
  jwksFile?: string;
  /** Shared secret for HS256/384/512 tokens. */
  secret?: Secret;
  audience?: string | string[];
  issuer?: string | string[];
}

/** Resolves to the reason a token is refused, or undefined when it verifies and its `sub` is the mid. */
export type TokenCheck = (token: string | undefined, mid: string) => Promise<string | undefined>;

const HMAC = ['HS256', 'HS384', 'HS512'];
const ASYMMETRIC = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];

/** Builds the check once; a key set that cannot be read or parsed fails here, at start, not per connection. */
export async function createTokenCheck(cfg: JwtConfig): Promise<TokenCheck> {
  const keys: JWK[] = [...(cfg.keys ?? [])];
  if (cfg.jwksFile) {
    let doc: { keys?: unknown };
    try {
      doc = JSON.parse(await readFile(cfg.jwksFile, 'utf8')) as { keys?: unknown };
    } catch (err) {
      throw new Error(`auth.jwt.jwksFile ${cfg.jwksFile}: ${(err as Error).message}`);
    }
    if (!Array.isArray(doc.keys)) throw new Error(`auth.jwt.jwksFile ${cfg.jwksFile}: no "keys" array`);
    keys.push(...(doc.keys as JWK[]));
  }
  const jwks = keys.length > 0 ? createLocalJWKSet({ keys }) : undefined;
  const secret = cfg.secret ? new TextEncoder().encode(cfg.secret.reveal()) : undefined;
  if (!jwks && !secret) throw new Error('auth.jwt needs keys, jwksFile or secret');
  const base: JWTVerifyOptions = { audience: cfg.audience, issuer: cfg.issuer };

  return async (token, mid) => {
    if (typeof token !== 'string' || token === '') return 'no token in the auth body';
    try {
      const alg = decodeProtectedHeader(token).alg ?? '';
      const hmac = HMAC.includes(alg);
      if (hmac && !secret) return `token signed with ${alg} but no secret is configured`;
      if (!hmac && !jwks) return `token signed with ${alg} but no public keys are configured`;
      const { payload } = hmac ? await jwtVerify(token, secret!, { ...base, algorithms: HMAC }) : await jwtVerify(token, jwks!, { ...base, algorithms: ASYMMETRIC });
      if (payload.sub !== mid) return `token sub ${JSON.stringify(payload.sub ?? null)} is not the mid ${mid}`;
      return undefined;
    } catch (err) {
      return `token refused: ${(err as Error).message}`;
    }
  };
}
