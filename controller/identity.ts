import { exportJWK, generateKeyPair, importJWK, SignJWT, type JWK, type CryptoKey } from 'jose';
import { createPublicKey, randomUUID, verify, type KeyObject } from 'node:crypto';
import { openStore, type Store } from '../plugins/sdk/store.ts';
import { exclusive } from '../plugins/sdk/durable/backend.ts';
import { matchesHash, newSecret, sha256 } from './secrets.ts';

interface IdentityData {
  adminTokenHash: string | null;
  signingKey: JWK | null;
  publicKey: JWK | null;
  createdAt: string | null;
}

const ISSUER = 'outpost-controller';
const AUDIENCE = 'outpost-link';

/** The controller's own secrets: the admin token's hash and the Ed25519 key that signs agent credentials. */
export class Identity {
  private constructor(
    private readonly store: Store<IdentityData>,
    private readonly privateKey: CryptoKey,
    private readonly publicKey: KeyObject,
  ) {}

  /**
   * Returns the identity and, on first start only, the plain admin token to print once. Controllers
   * sharing a database that start together run this one at a time: the first creates the identity,
   * the others open the store after it and find it there (one admin token for all, printed once).
   */
  static async open(dataDir: string, presetAdminToken?: string): Promise<{ identity: Identity; newAdminToken?: string }> {
    const { store, newAdminToken } = await exclusive(dataDir, 'controller-identity', async () => {
      const store = await openStore<IdentityData>(dataDir, 'controller', { adminTokenHash: null, signingKey: null, publicKey: null, createdAt: null });
      let newAdminToken: string | undefined;
      if (!store.data.signingKey || !store.data.adminTokenHash) {
        const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
        const token = presetAdminToken ?? `opa_${newSecret(32)}`;
        const signingKey = await exportJWK(privateKey);
        const pub = await exportJWK(publicKey);
        await store.update((d) => {
          d.signingKey ??= signingKey;
          d.publicKey ??= pub;
          if (!d.adminTokenHash) {
            d.adminTokenHash = sha256(token);
            newAdminToken = token;
          }
          d.createdAt ??= new Date().toISOString();
        });
      }
      return { store, newAdminToken };
    });
    const priv = (await importJWK(store.data.signingKey!, 'EdDSA')) as CryptoKey;
    const pub = createPublicKey({ key: store.data.publicKey! as import('node:crypto').JsonWebKey, format: 'jwk' });
    return { identity: new Identity(store, priv, pub), newAdminToken };
  }

  isAdminToken(token: string): boolean {
    const hash = this.store.data.adminTokenHash;
    return !!hash && matchesHash(token, hash);
  }

  async rotateAdminToken(): Promise<string> {
    const token = `opa_${newSecret(32)}`;
    await this.store.update((d) => {
      d.adminTokenHash = sha256(token);
    });
    return token;
  }

  async signCredential(nodeId: string): Promise<{ credential: string; jti: string }> {
    const jti = randomUUID();
    const credential = await new SignJWT({})
      .setProtectedHeader({ alg: 'EdDSA' })
      .setSubject(nodeId)
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setJti(jti)
      .setIssuedAt()
      .sign(this.privateKey);
    return { credential, jti };
  }

  /**
   * Verifies an agent credential; throws with a reason on any defect. Synchronous on purpose: the link's
   * upgrade handler must answer without yielding (see LinkServer.mount), and jose only verifies asynchronously.
   */
  verifyCredential(jwt: string): { nodeId: string; jti: string } {
    return verifyEd25519Jwt(jwt, this.publicKey);
  }
}

const B64URL = /^[A-Za-z0-9_-]+$/;

function decodeJson(part: string, what: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // named below
  }
  throw new Error(`credential ${what} is not a JSON object`);
}

/** A compact JWS signed with EdDSA by this controller, for the link's audience; no other algorithm is accepted. */
export function verifyEd25519Jwt(jwt: string, publicKey: KeyObject, now = Date.now()): { nodeId: string; jti: string } {
  const parts = jwt.split('.');
  if (parts.length !== 3 || !parts.every((p) => B64URL.test(p))) throw new Error('credential is not a compact JWS');
  const [h, p, sig] = parts;
  const header = decodeJson(h, 'header');
  if (header.alg !== 'EdDSA') throw new Error(`credential algorithm ${JSON.stringify(header.alg)} is not EdDSA`);
  if ('crit' in header) throw new Error('credential has critical header parameters');
  if (!verify(null, Buffer.from(`${h}.${p}`), publicKey, Buffer.from(sig, 'base64url'))) throw new Error('credential signature verification failed');
  const payload = decodeJson(p, 'payload');
  if (payload.iss !== ISSUER) throw new Error('credential issuer is not this controller');
  const aud = payload.aud;
  if (!(aud === AUDIENCE || (Array.isArray(aud) && aud.includes(AUDIENCE)))) throw new Error('credential audience is not the link');
  const secs = now / 1000;
  if (payload.exp !== undefined && !(typeof payload.exp === 'number' && payload.exp > secs)) throw new Error('credential expired');
  if (payload.nbf !== undefined && !(typeof payload.nbf === 'number' && payload.nbf <= secs)) throw new Error('credential not yet valid');
  if (typeof payload.sub !== 'string' || !payload.sub || typeof payload.jti !== 'string' || !payload.jti) throw new Error('credential lacks sub or jti');
  return { nodeId: payload.sub, jti: payload.jti };
}
