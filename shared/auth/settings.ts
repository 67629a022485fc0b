/**
 * The upload API's authentication and quotas as configured: what the guard checks
 * ({@link uploadAuth}) and the per-owner limits in force ({@link quotas}).
 */
import { type Config, ConfigError } from '../core/config.js';
import type { UploadAuth } from '../core/domain.js';

const MiB = 1024 * 1024;

/**
 * The upload function's authentication. Only the upload function needs its token (the others
 * never see the secret), so this check is made where upload starts, not in {@link loadConfig}:
 * with UPLOAD_AUTH=token (the default) a missing UPLOAD_TOKEN is a {@link ConfigError}.
 */
export function uploadAuth(
  config: Pick<Config, 'UPLOAD_AUTH' | 'UPLOAD_TOKEN'> &
    Partial<Pick<Config, 'JWT_ISSUER' | 'JWT_AUDIENCE' | 'JWT_JWKS_URL'>>,
): UploadAuth {
  if (config.UPLOAD_AUTH === 'none') return { mode: 'none' };
  if (config.UPLOAD_AUTH === 'jwt') {
    if (config.JWT_ISSUER === undefined || config.JWT_AUDIENCE === undefined) {
      throw new ConfigError([
        'UPLOAD_AUTH is jwt but JWT_ISSUER or JWT_AUDIENCE is unset: set both (docs/security.md shows them for Firebase Authentication, Identity Platform and Auth0)',
      ]);
    }
    return {
      mode: 'jwt',
      issuer: config.JWT_ISSUER,
      audience: config.JWT_AUDIENCE,
      ...(config.JWT_JWKS_URL ? { jwksUrl: config.JWT_JWKS_URL } : {}),
      ...(config.UPLOAD_TOKEN ? { token: config.UPLOAD_TOKEN } : {}),
    };
  }
  if (config.UPLOAD_TOKEN === undefined) {
    throw new ConfigError([
      'UPLOAD_TOKEN is unset but UPLOAD_AUTH is token (the default): set UPLOAD_TOKEN to a bearer token of at least 16 characters, or set UPLOAD_AUTH=none to run the upload API without authentication',
    ]);
  }
  return { mode: 'token', token: config.UPLOAD_TOKEN };
}

/** Per-owner quotas in force (0: no limit); see {@link quotas}. */
export interface Quotas {
  readonly uploadsPerDay: number;
  readonly bytesPerDay: number;
  readonly openTickets: number;
}

/** The documented defaults with UPLOAD_AUTH=jwt (end users); other modes default to no limits. */
export const JWT_QUOTA_DEFAULTS: Quotas = { uploadsPerDay: 200, bytesPerDay: 2 * 1024 * MiB, openTickets: 10 };

/** The quotas in force: the QUOTA_* settings, else the mode's defaults. */
export function quotas(
  config: Pick<Config, 'UPLOAD_AUTH' | 'QUOTA_UPLOADS_PER_DAY' | 'QUOTA_BYTES_PER_DAY' | 'QUOTA_OPEN_TICKETS'>,
): Quotas {
  const defaults =
    config.UPLOAD_AUTH === 'jwt' ? JWT_QUOTA_DEFAULTS : { uploadsPerDay: 0, bytesPerDay: 0, openTickets: 0 };
  return {
    uploadsPerDay: config.QUOTA_UPLOADS_PER_DAY ?? defaults.uploadsPerDay,
    bytesPerDay: config.QUOTA_BYTES_PER_DAY ?? defaults.bytesPerDay,
    openTickets: config.QUOTA_OPEN_TICKETS ?? defaults.openTickets,
  };
}
