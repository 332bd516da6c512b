import { exportJWK, generateKeyPair, importJWK, SignJWT, jwtVerify, type JWK, type CryptoKey } from 'jose';
import { randomUUID } from 'node:crypto';
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
    private readonly publicKey: CryptoKey,
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
    const pub = (await importJWK(store.data.publicKey!, 'EdDSA')) as CryptoKey;
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

  /** Verifies an agent credential; throws with a reason on any defect. */
  async verifyCredential(jwt: string): Promise<{ nodeId: string; jti: string }> {
    const { payload } = await jwtVerify(jwt, this.publicKey, { issuer: ISSUER, audience: AUDIENCE, algorithms: ['EdDSA'] });
    if (!payload.sub || !payload.jti) throw new Error('credential lacks sub or jti');
    return { nodeId: payload.sub, jti: payload.jti };
  }
}
