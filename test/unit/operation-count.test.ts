/**
 * The benches' operation classes (bench/operation-count.ts) and per-1,000 prices
 * (bench/operations.ts): lists and writes are Class A, reads Class B, deletes free.
 */
import { expect } from 'chai';
import { classOf, countOperations, NO_FIRESTORE } from '../../bench/operation-count.js';
import { costPer1000, OPS_PRICES } from '../../bench/operations.js';

describe('bench operation counts', () => {
  it('sorts the storage server’s requests into Class A, Class B, free deletes and non-operations', () => {
    const cases: Array<[string, string, ReturnType<typeof classOf>]> = [
      ['POST', '/upload/storage/v1/b/u/o?uploadType=multipart&name=originals%2Fx', 'A'],
      ['PATCH', '/storage/v1/b/u/o/originals%2Fx', 'A'],
      ['GET', '/storage/v1/b/u/o?prefix=originals%2F', 'A'],
      ['GET', '/storage/v1/b/u/o/originals%2Fx', 'B'],
      ['GET', '/storage/v1/b/u/o/originals%2Fx?alt=media', 'B'],
      ['GET', '/download/storage/v1/b/u/o/x?alt=media', 'B'],
      ['PUT', '/u/incoming/x.jpg?X-Goog-Signature=1', 'A'],
      ['DELETE', '/storage/v1/b/u/o/x', 'delete'],
      ['OPTIONS', '/u/incoming/x.jpg', 'none'],
    ];
    for (const [method, target, kind] of cases)
      expect(classOf({ method, target }), `${method} ${target}`).to.equal(kind);
    const counts = countOperations(
      cases.map(([method, target]) => ({ method, target })),
      NO_FIRESTORE,
    );
    expect(counts).to.include({ classA: 4, classB: 3, deletes: 1, lists: 1, firestoreReads: 0, firestoreWrites: 0 });
  });

  it('prices operations per 1,000 images: storage by class, Firestore by document, Pub/Sub per 1,000-byte message', () => {
    const cost = costPer1000({
      classA: 1000,
      classB: 1000,
      deletes: 5,
      lists: 0,
      firestoreReads: 100_000,
      firestoreWrites: 100_000,
      byRoute: {},
      jobs: 1,
      events: 1,
      variants: 15,
    });
    expect(cost.storage).to.be.closeTo(1000 * (0.005 + 0.0004), 1e-9);
    expect(cost.firestore).to.be.closeTo(1000 * (0.03 + 0.09), 1e-9);
    expect(cost.pubsub).to.be.closeTo(1000 * 3 * OPS_PRICES.pubsubMessage, 1e-12);
    expect(cost.total).to.be.closeTo(cost.storage + cost.firestore + cost.pubsub, 1e-12);
  });
});
