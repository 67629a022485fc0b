/**
 * The state layer's opt-in operation counter (measurement only): documents read and written by
 * readImage, transactImage and the cursor transactions. Firestore is stubbed here (a client whose
 * transaction runs its callback once); the benches count against the emulator.
 */
import { expect } from 'chai';
import type { Firestore } from '@google-cloud/firestore';
import {
  firestoreOperations,
  readImage,
  resetFirestoreOperations,
  transactImage,
} from '../../shared/state/image-doc.js';
import { advanceStep, claimStep } from '../../shared/state/cursors.js';
import { transactAsset, transactRemoveAsset } from '../../shared/state/assets.js';
import { claimForAccept } from '../../shared/state/transitions.js';
import { SERVICE_OWNER } from '../../shared/auth/principal.js';

/** A stub client: every document is absent; transactions run once and record their writes. */
function stubFirestore(): { firestore: Firestore; sets: number } {
  const state = { sets: 0 };
  const doc = (id: string) => ({ id, get: async () => ({ data: () => undefined }) });
  const collection = () => ({ doc });
  const absent = async () => ({ data: () => undefined });
  const firestore = {
    collection,
    runTransaction: async (work: (tx: unknown) => Promise<unknown>) =>
      work({
        get: absent,
        getAll: async (...refs: unknown[]) => refs.map(() => ({ data: () => undefined })),
        set: () => void state.sets++,
        create: () => void state.sets++,
        delete: () => void state.sets++,
      }),
  } as unknown as Firestore;
  return {
    firestore,
    get sets() {
      return state.sets;
    },
  };
}

describe('firestoreOperations (stubbed Firestore)', () => {
  beforeEach(() => resetFirestoreOperations());

  it('counts one read per readImage and per transaction, one write per transaction that writes', async () => {
    const { firestore } = stubFirestore();
    const deps = { firestore, now: () => new Date(0) };
    await readImage(deps, 'a');
    await transactImage(deps, 'a', () => ({ result: 'none' }));
    expect(firestoreOperations).to.deep.equal({ reads: 2, writes: 0 });
    await transactImage(deps, 'a', (_doc, now) => ({
      next: { id: 'a', createdAt: now, updatedAt: now, events: [] } as never,
      result: 'wrote',
    }));
    expect(firestoreOperations).to.deep.equal({ reads: 3, writes: 1 });
    resetFirestoreOperations();
    expect(firestoreOperations).to.deep.equal({ reads: 0, writes: 0 });
  });

  it('counts the cursor transactions: a claim and a move read and write one document each', async () => {
    const stub = stubFirestore();
    const deps = { firestore: stub.firestore, now: () => new Date(0) };
    const claim = await claimStep(deps, 'orphans', 'pass', new Date(60_000));
    expect(claim).to.not.equal('busy');
    if (claim === 'busy') return;
    // The stub's cursor still reads as absent, so the move finds another claim holder: no write.
    expect(await advanceStep(claim, 'x')).to.equal(false);
    expect(firestoreOperations).to.deep.equal({ reads: 2, writes: 1 });
    expect(stub.sets).to.equal(1);
  });

  it("counts an asset's creation: the asset and image read together (and the owner when a quota applies), each written", async () => {
    const deps = { firestore: stubFirestore().firestore, now: () => new Date(0) };
    const info = { format: 'jpeg', width: 2, height: 2, bytes: 9, contentType: 'image/jpeg' };
    const claim = claimForAccept({
      id: 'a'.repeat(32),
      info,
      source: 'upload',
      acceptedAt: new Date(0),
      recipe: 'r',
      plannedVariants: 1,
    });
    const announcer = { holder: 'accept:1', publicBaseUrl: 'https://img.example', imagesBucket: 'images' };
    const asset = { imageId: 'a'.repeat(32), source: 'upload', bytes: 9, chargeQuota: true, announcer };
    const limits = { uploadsPerDay: 5, bytesPerDay: 0, openTickets: 0 };
    await transactAsset(deps, { ...asset, owner: SERVICE_OWNER, quotas: limits }, claim, () => true);
    expect(firestoreOperations, 'the service: no owner document').to.deep.equal({ reads: 2, writes: 2 });
    resetFirestoreOperations();
    await transactAsset(deps, { ...asset, owner: 'user:a', quotas: limits }, claim, () => true);
    expect(firestoreOperations, 'a user with a quota').to.deep.equal({ reads: 3, writes: 3 });
    resetFirestoreOperations();
    // The stub's asset reads as absent: nothing to remove, one read, no write.
    expect(await transactRemoveAsset(deps, 'b'.repeat(32), 'user:a', 'h')).to.deep.equal({ kind: 'not-found' });
    expect(firestoreOperations).to.deep.equal({ reads: 1, writes: 0 });
  });
});
