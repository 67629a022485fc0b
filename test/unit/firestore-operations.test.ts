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

/** A stub client: every document is absent; transactions run once and record their writes. */
function stubFirestore(): { firestore: Firestore; sets: number } {
  const state = { sets: 0 };
  const doc = (id: string) => ({ id, get: async () => ({ data: () => undefined }) });
  const collection = () => ({ doc });
  const firestore = {
    collection,
    runTransaction: async (work: (tx: unknown) => Promise<unknown>) =>
      work({ get: async () => ({ data: () => undefined }), set: () => void state.sets++ }),
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
});
