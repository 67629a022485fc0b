/**
 * The persistent cursor of a cleanup step that walks a listing (the orphan sweep, the reprocess
 * backfill): a document `cleanup/{step}` holding the last name reviewed and, while a pass works
 * on the step, that pass's claim. Claims and moves are transactions, so of two overlapping passes
 * only one works on a step and only it moves the cursor. docs/cleanup.md.
 */
import type { DocumentReference } from '@google-cloud/firestore';
import { Timestamp } from '@google-cloud/firestore';
import type { PipelineDeps } from '../cloud/deps.js';
import { topology } from '../core/topology.js';
import { countFirestore, guardFirestore } from './image-doc.js';

/** A step this pass holds: where to start, and the extra fields the step keeps (e.g. a budget). */
export interface StepClaim {
  readonly step: string;
  readonly after: string | undefined;
  readonly passId: string;
  readonly ref: DocumentReference;
  readonly firestore: PipelineDeps['firestore'];
  readonly fields: Readonly<Record<string, string>>;
}

/** Why a step could not be claimed: another pass holds it. */
export type ClaimRefusal = 'busy';

interface CursorData {
  after?: string;
  claimedBy?: string;
  claimedUntil?: Timestamp;
  fields?: Record<string, string>;
}

function cursorRef(deps: Pick<PipelineDeps, 'firestore'>, step: string): DocumentReference {
  return deps.firestore.collection(topology.firestore.collections.cleanup).doc(step);
}

/** Reads a step's cursor without claiming it (dry runs). */
export async function readCursor(deps: Pick<PipelineDeps, 'firestore'>, step: string): Promise<string | undefined> {
  const snapshot = await guardFirestore(`read cleanup/${step}`, () => cursorRef(deps, step).get());
  countFirestore(1);
  const data = snapshot.data() as CursorData | undefined;
  return data?.after || undefined;
}

/**
 * Claims a step until `until`; refused while another pass holds an unexpired claim. An expired
 * claim (its pass died) is taken over from the cursor it left.
 */
export async function claimStep(
  deps: Pick<PipelineDeps, 'firestore' | 'now'>,
  step: string,
  passId: string,
  until: Date,
): Promise<StepClaim | ClaimRefusal> {
  const ref = cursorRef(deps, step);
  const claim = await guardFirestore(`claim cleanup/${step}`, () =>
    deps.firestore.runTransaction(async (tx) => {
      const data = ((await tx.get(ref)).data() ?? {}) as CursorData;
      countFirestore(1);
      if (data.claimedBy && data.claimedUntil && data.claimedUntil.toMillis() > deps.now().getTime()) return 'busy';
      tx.set(ref, { ...data, claimedBy: passId, claimedUntil: Timestamp.fromDate(until) });
      return {
        step,
        after: data.after || undefined,
        passId,
        ref,
        firestore: deps.firestore,
        fields: data.fields ?? {},
      };
    }),
  );
  if (claim !== 'busy') countFirestore(0, 1);
  return claim;
}

/**
 * Moves the cursor to `after` (undefined: back to the start), stores `fields` and releases the
 * claim. False when the claim was taken over meanwhile: the cursor stays where the other pass put it.
 */
export async function advanceStep(
  claim: StepClaim,
  after: string | undefined,
  fields: Record<string, string> = {},
): Promise<boolean> {
  const moved = await guardFirestore(`move cleanup/${claim.step}`, () =>
    claim.firestore.runTransaction(async (tx) => {
      const data = ((await tx.get(claim.ref)).data() ?? {}) as CursorData;
      countFirestore(1);
      if (data.claimedBy !== claim.passId) return false;
      tx.set(claim.ref, { after: after ?? '', fields: { ...claim.fields, ...fields } });
      return true;
    }),
  );
  if (moved) countFirestore(0, 1);
  return moved;
}
