/**
 * Who is calling the upload API, and so whose assets a request reads and writes. Every request is
 * made by a principal: an end user (a verified ID token's `sub`, UPLOAD_AUTH=jwt), or the
 * deployment's own `service` principal (the shared token, or any caller IAM let through with
 * UPLOAD_AUTH=none), which may act for an end user it names in {@link OWNER_HEADER}.
 * docs/security.md says who can do what with which credential.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { UploadAuth } from '../core/domain.js';
import { permanent } from '../core/errors.js';

/** Header in which a trusted backend (shared token, or UPLOAD_AUTH=none) names the end user it acts for. */
export const OWNER_HEADER = 'x-upload-owner';

/** The caller: an end user, or the deployment's own backends. */
export type Principal = { readonly kind: 'service' } | { readonly kind: 'user'; readonly sub: string };

/** The owner key that assets, quotas and tickets are filed under: `service`, or `user:{sub}`. */
export type OwnerKey = string;

/** The owner of everything the deployment's own backends upload without naming a user (and of ingest's objects). */
export const SERVICE_OWNER: OwnerKey = 'service';

/** The owner key of a principal. */
export function ownerOf(principal: Principal): OwnerKey {
  return principal.kind === 'service' ? SERVICE_OWNER : `user:${principal.sub}`;
}

/** Longest `sub` (or named owner) accepted, in characters: OIDC allows 255 ASCII characters. */
export const MAX_SUBJECT_LENGTH = 255;

/** A subject as an owner: non-empty, at most 255 characters, no control characters. */
export function parseSubject(sub: unknown, where: string): string {
  if (typeof sub !== 'string' || sub.length === 0)
    throw permanent('unauthorized', `${where} has no subject (\`sub\`).`);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (sub.length > MAX_SUBJECT_LENGTH || /[\u0000-\u001f\u007f]/.test(sub))
    throw permanent(
      'unauthorized',
      `${where}'s subject is longer than ${MAX_SUBJECT_LENGTH} characters or has control characters.`,
    );
  return sub;
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/**
 * True when `authorization` carries the shared token. Both sides are hashed to equal length
 * first, so the comparison time says nothing about the token's length or content.
 */
export function isSharedToken(authorization: string | undefined, token: string | undefined): boolean {
  if (!token) return false;
  const match = /^Bearer\s+(.+)$/i.exec(authorization ?? '');
  const presented = match?.[1]?.trim() ?? '';
  return timingSafeEqual(digest(presented), digest(token)) && presented.length > 0;
}

/** The parts of a request {@link trustedPrincipal} reads. */
export interface PrincipalHead {
  readonly authorization: string | undefined;
  /** The {@link OWNER_HEADER} value, if any. */
  readonly owner: string | undefined;
}

/**
 * The principal of a request the deployment trusts without a user token: any caller with
 * UPLOAD_AUTH=none, the shared token's holder otherwise; undefined when neither applies (then only
 * an ID token can authenticate it). A trusted caller naming an owner acts for that user.
 */
export function trustedPrincipal(head: PrincipalHead, auth: UploadAuth): Principal | undefined {
  const trusted = auth.mode === 'none' || isSharedToken(head.authorization, auth.token);
  if (!trusted) return undefined;
  if (head.owner === undefined) return { kind: 'service' };
  return { kind: 'user', sub: parseSubject(head.owner.trim(), `The ${OWNER_HEADER} header`) };
}
