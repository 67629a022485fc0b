/**
 * Generation and metageneration preconditions with Cloud Storage's semantics: `ifGenerationMatch=0`
 * means "does not exist", every other condition needs a live object, a failed `…NotMatch` on a GET
 * is 304 and any other failure 412, a malformed value 400.
 */
import { invalidParameter, notModified, preconditionFailed } from './api-errors.js';
import type { ObjectRecord } from './object-records.js';

/** Parsed preconditions; absent fields were not given. */
export interface Preconditions {
  ifGenerationMatch?: bigint;
  ifGenerationNotMatch?: bigint;
  ifMetagenerationMatch?: bigint;
  ifMetagenerationNotMatch?: bigint;
}

const CONDITIONS = ['GenerationMatch', 'GenerationNotMatch', 'MetagenerationMatch', 'MetagenerationNotMatch'] as const;

/**
 * Reads the four conditions from a query string. `source` reads the `ifSource…` variants that
 * copy, rewrite and move apply to their source object.
 */
export function parsePreconditions(params: URLSearchParams, which: 'target' | 'source' = 'target'): Preconditions {
  const result: Preconditions = {};
  for (const condition of CONDITIONS) {
    const parameter = which === 'source' ? `ifSource${condition}` : `if${condition}`;
    const raw = params.get(parameter);
    if (raw === null) continue;
    if (!/^\d{1,19}$/.test(raw.trim())) throw invalidParameter(parameter, raw);
    result[`if${condition}`] = BigInt(raw.trim());
  }
  return result;
}

/** True when no condition was given. */
export function isUnconditional(preconditions: Preconditions): boolean {
  return CONDITIONS.every((condition) => preconditions[`if${condition}`] === undefined);
}

/**
 * Throws unless the live object `current` (undefined = none) satisfies the conditions.
 * `operation` is `read` for GETs (304 for failed "not match" conditions), `write` otherwise.
 * Callers answer 404 for a missing object before calling this when the operation needs one.
 */
export function checkPreconditions(
  current: ObjectRecord | undefined,
  preconditions: Preconditions,
  operation: 'read' | 'write' = 'write',
): void {
  const { ifGenerationMatch, ifGenerationNotMatch, ifMetagenerationMatch, ifMetagenerationNotMatch } = preconditions;
  if (!current) {
    if (ifGenerationMatch !== undefined && ifGenerationMatch !== 0n) {
      throw preconditionFailed(`ifGenerationMatch=${ifGenerationMatch} but the object does not exist`);
    }
    if (ifGenerationNotMatch !== undefined)
      throw preconditionFailed('ifGenerationNotMatch given but the object does not exist');
    if (ifMetagenerationMatch !== undefined)
      throw preconditionFailed('ifMetagenerationMatch given but the object does not exist');
    if (ifMetagenerationNotMatch !== undefined)
      throw preconditionFailed('ifMetagenerationNotMatch given but the object does not exist');
    return;
  }
  const generation = BigInt(current.generation);
  const metageneration = BigInt(current.metageneration);
  if (ifGenerationMatch !== undefined && ifGenerationMatch !== generation) {
    throw preconditionFailed(
      ifGenerationMatch === 0n
        ? 'ifGenerationMatch=0 but the object exists'
        : `ifGenerationMatch=${ifGenerationMatch}, live generation is ${generation}`,
    );
  }
  if (ifMetagenerationMatch !== undefined && ifMetagenerationMatch !== metageneration) {
    throw preconditionFailed(
      `ifMetagenerationMatch=${ifMetagenerationMatch}, live metageneration is ${metageneration}`,
    );
  }
  if (ifGenerationNotMatch !== undefined && ifGenerationNotMatch === generation) {
    throw operation === 'read'
      ? notModified()
      : preconditionFailed(`ifGenerationNotMatch=${ifGenerationNotMatch} is the live generation`);
  }
  if (ifMetagenerationNotMatch !== undefined && ifMetagenerationNotMatch === metageneration) {
    throw operation === 'read'
      ? notModified()
      : preconditionFailed(`ifMetagenerationNotMatch=${ifMetagenerationNotMatch} is the live metageneration`);
  }
}
