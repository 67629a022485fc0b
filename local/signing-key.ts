/**
 * The local stack's throwaway URL-signing key: made at every start, never written to disk. The
 * upload function's storage client signs V4 URLs with its private half (production signs through
 * IAM signBlob instead, with no key at all) and the local storage server verifies them against its
 * public half, so a wrong signature fails locally exactly as it would against Cloud Storage.
 */
import { generateKeyPairSync } from 'node:crypto';
import type { LocalSigningKey } from '../shared/cloud/deps.js';

/** A signing identity: the key pair and the service-account e-mail it stands for. */
export interface GeneratedSigningKey extends LocalSigningKey {
  /** SPKI PEM, for the storage server. */
  readonly publicKey: string;
}

/** A fresh 2048-bit RSA key for `upload@{projectId}.iam.gserviceaccount.com`. */
export function generateSigningKey(projectId: string): GeneratedSigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    clientEmail: `upload@${projectId}.iam.gserviceaccount.com`,
    privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}
