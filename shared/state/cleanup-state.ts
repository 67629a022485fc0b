/**
 * The persistent cursor of one cleanup step: a zero-byte object `cleanup/{step}` in the uploads
 * bucket whose custom metadata holds the last name the step reviewed and, while a pass works
 * on the step, that pass's claim. Every write is generation-matched, so of two overlapping
 * passes only one claims a step (the other skips it) and only the claimant moves the cursor.
 * See docs/cleanup.md.
 */
import type { File } from '@google-cloud/storage';
import type { PipelineDeps } from '../cloud/deps.js';
import { isPreconditionFailed } from '../core/errors.js';
import { guardStorage, metadataOrUndefined } from '../cloud/objects.js';
import { CURSOR_METADATA, cleanupStateName } from '../core/naming.js';

/** A step this pass holds: where to start, and the generation its next write must match. */
export interface StepClaim {
  readonly step: string;
  readonly after: string | undefined;
  readonly generation: string;
  readonly file: File;
  /** The cursor object's other custom metadata (e.g. the reprocess step's daily budget), kept by every write. */
  readonly fields: Readonly<Record<string, string>>;
}

/** Why a step could not be claimed. */
export type ClaimRefusal = 'busy' | 'lost-race';

async function write(
  file: File,
  fields: Record<string, string>,
  ifGenerationMatch: number | string,
): Promise<string | undefined> {
  try {
    await guardStorage(`write ${file.name}`, () =>
      file.save('', {
        resumable: false,
        contentType: 'application/octet-stream',
        preconditionOpts: { ifGenerationMatch: Number(ifGenerationMatch) },
        metadata: { metadata: fields },
      }),
    );
  } catch (error) {
    if (isPreconditionFailed(error)) return undefined;
    throw error;
  }
  return String(file.metadata.generation);
}

/** Reads a step's cursor without claiming it (dry runs). */
export async function readCursor(deps: PipelineDeps, step: string): Promise<string | undefined> {
  const metadata = await metadataOrUndefined(
    deps.storage.bucket(deps.config.UPLOADS_BUCKET).file(cleanupStateName(step)),
  );
  const after = metadata?.metadata?.[CURSOR_METADATA.after];
  return typeof after === 'string' && after !== '' ? after : undefined;
}

/**
 * Claims a step until `until`: refused when another pass holds an unexpired claim ('busy') or
 * wrote the object between our read and our write ('lost-race'). An expired claim (its pass
 * died) is taken over from the cursor it left.
 */
export async function claimStep(
  deps: PipelineDeps,
  step: string,
  passId: string,
  until: Date,
): Promise<StepClaim | ClaimRefusal> {
  const file = deps.storage.bucket(deps.config.UPLOADS_BUCKET).file(cleanupStateName(step));
  const metadata = await metadataOrUndefined(file);
  const custom = metadata?.metadata ?? {};
  const claimedUntil = new Date(String(custom[CURSOR_METADATA.claimedUntil] ?? ''));
  if (custom[CURSOR_METADATA.claimedBy] && claimedUntil.getTime() > deps.now().getTime()) return 'busy';
  const after =
    typeof custom[CURSOR_METADATA.after] === 'string' && custom[CURSOR_METADATA.after] !== ''
      ? String(custom[CURSOR_METADATA.after])
      : undefined;
  const known = new Set<string>(Object.values(CURSOR_METADATA));
  const fields = Object.fromEntries(
    Object.entries(custom).filter(([key, value]) => !known.has(key) && typeof value === 'string'),
  ) as Record<string, string>;
  const generation = await write(
    file,
    {
      ...fields,
      [CURSOR_METADATA.after]: after ?? '',
      [CURSOR_METADATA.claimedBy]: passId,
      [CURSOR_METADATA.claimedUntil]: until.toISOString(),
    },
    metadata?.generation ?? 0,
  );
  return generation === undefined ? 'lost-race' : { step, after, generation, file, fields };
}

/**
 * Moves the cursor to `after` and releases the claim. Returns false when the claim was taken
 * over meanwhile (this pass outlived it): the cursor then stays where the other pass put it.
 */
export async function advanceStep(
  claim: StepClaim,
  after: string | undefined,
  fields: Record<string, string> = {},
): Promise<boolean> {
  return (
    (await write(
      claim.file,
      { ...claim.fields, ...fields, [CURSOR_METADATA.after]: after ?? '' },
      claim.generation,
    )) !== undefined
  );
}
