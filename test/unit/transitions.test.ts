/**
 * The state transitions (shared/state/transitions.ts) as the pure functions they are: each case
 * gives a document (or none) and a fixed clock, and checks the decision and the next document.
 * No emulator: the transaction around them is image-doc.ts's, tested in the integration tier.
 */
import { expect } from 'chai';
import type { FailureRecord, Manifest, OriginalInfo, OriginalRef } from '../../shared/core/schemas.js';
import type { EventMessage } from '../../shared/core/schemas.js';
import type { ImageDoc, OutboxEntry, VariantFacts } from '../../shared/state/image-doc.js';
import {
  type AcceptFacts,
  claimForAccept,
  deleteImageDoc,
  failImage,
  finishJob,
  markDispatched,
  recordOriginal,
  releaseClaim,
} from '../../shared/state/transitions.js';
import {
  OUTBOX_LEASE_MS,
  PURGE_AFTER_MS,
  type StateSettings,
  UNDISPATCHED_GRACE_MS,
  withEvent,
} from '../../shared/state/policy.js';
import { deadLetter, redispatchStuck, releaseOriginal } from '../../shared/state/upkeep.js';
import { recordEarlyVariant } from '../../shared/state/progress.js';
import { isStaleIncoming } from '../../shared/pipeline/cleanup-sweep.js';
import { finishedVariants } from '../../shared/pipeline/status.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const now = new Date('2026-06-01T12:00:00Z');
const plus = (ms: number) => new Date(now.getTime() + ms);
const ID = 'a'.repeat(32);
const settings: StateSettings = {
  redispatchAfterMs: 30 * MIN,
  maxRedispatches: 2,
  retentionDays: 30,
  imagesBucket: 'images',
};
const info: OriginalInfo = { format: 'jpeg', width: 200, height: 160, bytes: 1000, contentType: 'image/jpeg' };
const original: OriginalRef = { bucket: 'uploads', name: `originals/${ID}`, generation: '5' };
const crops = { '1:1': { left: 20, top: 0, width: 160, height: 160, by: 'focus' as const } };
const facts: AcceptFacts = { id: ID, info, source: 'upload', acceptedAt: now, recipe: 'r1', plannedVariants: 6 };
const manifest = {
  v: 1,
  id: ID,
  original: { ...info, name: original.name, generation: original.generation },
  formats: ['jpeg'],
  variants: [{ name: `${ID}/96w.jpg` }, { name: `${ID}/160w.jpg` }],
  createdAt: now.toISOString(),
} as unknown as Manifest;
const failure: FailureRecord = {
  v: 1,
  id: ID,
  code: 'dead_lettered',
  message: 'x',
  failedAt: now.toISOString(),
  retryable: true,
};
const event = (type: 'image.deleted' | 'image.failed' = 'image.deleted'): EventMessage =>
  type === 'image.deleted'
    ? { v: 1, type, imageId: ID, at: now.toISOString() }
    : { v: 1, type, imageId: ID, code: 'x', message: 'x', at: now.toISOString() };
const entry = (seq: number, published: boolean): OutboxEntry => ({ seq, published, event: event() });

/** A processing image, dispatched (dispatch 0, two jobs) an hour ago. */
function doc(overrides: Partial<ImageDoc> = {}): ImageDoc {
  return {
    v: 1,
    id: ID,
    status: 'processing',
    dispatch: 0,
    jobCount: 2,
    jobsDone: [],
    redispatches: 0,
    dispatchedAt: plus(-HOUR),
    staleAt: plus(-30 * MIN),
    recipe: 'r1',
    original,
    info,
    source: 'upload',
    acceptedAt: plus(-HOUR),
    plannedVariants: 6,
    variants: [],
    events: [],
    nextSeq: 1,
    createdAt: plus(-HOUR),
    updatedAt: plus(-HOUR),
    ...overrides,
  };
}
/** A ready image of recipe r1. */
const ready = (overrides: Partial<ImageDoc> = {}) =>
  doc({
    status: 'ready',
    manifest,
    jobsDone: [0, 1],
    dispatchedAt: plus(-HOUR),
    staleAt: undefined,
    retainUntil: plus(29 * DAY),
    events: [entry(1, true)],
    nextSeq: 2,
    ...overrides,
  });
const v = (name: string): VariantFacts => ({ name, width: 96, height: 77, bytes: 100, cpuMs: 5 });
const build = (_doc: ImageDoc, _variants: readonly VariantFacts[]) => manifest;
const seqs = (d: ImageDoc | undefined) =>
  d?.events.map((e) => `${e.seq}:${e.event.type}:${e.published ? 'pub' : 'pending'}`);

describe('transitions: claimForAccept', () => {
  const accept = (d: ImageDoc | undefined, f: Partial<AcceptFacts> = {}) => claimForAccept({ ...facts, ...f })(d, now);

  it('a new image is claimed with dispatch 0, due for cleanup after the undispatched grace', () => {
    const { next, result } = accept(undefined);
    expect(result).to.deep.include({ kind: 'claimed', dispatch: 0, original: undefined, retry: undefined });
    expect(next?.status).to.equal('processing');
    expect(next?.staleAt).to.deep.equal(plus(UNDISPATCHED_GRACE_MS));
    expect(next?.nextSeq).to.equal(1);
    expect(next?.events).to.deep.equal([]);
    expect(next, 'no dispatchedAt before the publish').to.not.have.property('dispatchedAt');
  });

  it('a ready image of the same recipe answers ready and writes nothing', () => {
    const { next, result } = accept(ready());
    expect(result).to.deep.equal({ kind: 'ready', manifest });
    expect(next).to.equal(undefined);
  });

  it('a ready image of another recipe is claimed as an update, keeping its manifest', () => {
    const { next, result } = accept(ready(), { recipe: 'r2' });
    expect(result).to.deep.include({
      kind: 'claimed',
      dispatch: 1,
      original,
      update: { replaces: 'r1', recipe: 'r2' },
    });
    expect(next?.status).to.equal('ready');
    expect(next?.manifest).to.deep.equal(manifest);
    expect(next?.recipe, 'the served recipe until the update is done').to.equal('r1');
    expect(next, 'retention waits for the update').to.not.have.property('retainUntil');
    expect(next?.staleAt).to.deep.equal(plus(UNDISPATCHED_GRACE_MS));
  });

  it('an update already in flight for that recipe answers in-flight', () => {
    const updating = ready({ dispatch: 1, update: { replaces: 'r1', recipe: 'r2' }, staleAt: plus(10 * MIN) });
    const { next, result } = accept(updating, { recipe: 'r2' });
    expect(result).to.deep.equal({ kind: 'in-flight', info, update: true, stored: true });
    expect(next).to.equal(undefined);
  });

  it('a retryable failure is claimed with the next dispatch and keeps the stored original', () => {
    const failed = doc({
      status: 'failed',
      dispatch: 3,
      failure,
      staleAt: undefined,
      events: [entry(1, true)],
      nextSeq: 2,
    });
    const { next, result } = accept(failed);
    expect(result).to.deep.include({ kind: 'claimed', dispatch: 4, original, retry: 'dead_lettered' });
    expect(next?.status).to.equal('processing');
    expect(next, 'the failure is cleared').to.not.have.property('failure');
    expect(next?.nextSeq, 'the outbox sequence continues').to.equal(2);
    expect(next?.events).to.deep.equal([entry(1, true)]);
  });

  it('a permanent failure answers failed', () => {
    const permanent = { ...failure, code: 'corrupt_image', retryable: false };
    const { next, result } = accept(doc({ status: 'failed', failure: permanent }));
    expect(result).to.deep.equal({ kind: 'failed', failure: permanent });
    expect(next).to.equal(undefined);
  });

  it('a deleted image is claimed again with no original and no old variants', () => {
    const deleted = doc({
      status: 'deleted',
      dispatch: 2,
      original: undefined,
      deletedOriginal: original,
      variants: [v(`${ID}/96w.jpg`)],
      nextSeq: 4,
    });
    const { next, result } = accept(deleted);
    expect(result).to.deep.include({ kind: 'claimed', dispatch: 3, original: undefined, retry: 'deleted' });
    expect(next?.variants).to.deep.equal([]);
    expect(next?.deletedOriginal, 'still to purge').to.deep.equal(original);
    expect(next?.nextSeq).to.equal(4);
  });

  it('a dispatched image still processing answers in-flight (even past staleAt: cleanup re-dispatches it)', () => {
    expect(accept(doc()).result).to.deep.equal({ kind: 'in-flight', info, update: false, stored: true });
    expect(accept(doc()).next).to.equal(undefined);
  });

  it('an undispatched claim within its grace answers in-flight; after it, the next upload claims it', () => {
    const undispatched = doc({ dispatchedAt: undefined, jobCount: 0, staleAt: plus(1) });
    expect(accept(undispatched).result).to.deep.include({ kind: 'in-flight', stored: true });
    const storing = accept({ ...undispatched, original: undefined });
    expect(storing.result, 'its original not stored yet').to.deep.include({ kind: 'in-flight', stored: false });
    const late = accept({ ...undispatched, staleAt: now });
    expect(late.result).to.deep.include({ kind: 'claimed', dispatch: 1, original, retry: 'undispatched' });
  });

  it("crops stored on the document win over the accepting request's", () => {
    const stored = doc({ status: 'failed', failure, info: { ...info, crops } });
    const other = { ...info, crops: { '1:1': { ...crops['1:1'], left: 0, by: 'attention' as const } } };
    const { next, result } = accept(stored, { info: other });
    expect(result.kind).to.equal('claimed');
    expect(next?.info.crops).to.deep.equal(crops);
  });
});

describe('transitions: recordOriginal, markDispatched, releaseClaim (fenced by dispatch)', () => {
  const claimed = doc({
    dispatch: 1,
    dispatchedAt: undefined,
    jobCount: 0,
    original: undefined,
    staleAt: plus(UNDISPATCHED_GRACE_MS),
  });

  it('recordOriginal records for the current dispatch only', () => {
    const ok = recordOriginal(1, original)(claimed, now);
    expect(ok.result).to.equal('recorded');
    expect(ok.next?.original).to.deep.equal(original);
    for (const [what, d, dispatch] of [
      ['an older dispatch', claimed, 0],
      ['a deleted image', { ...claimed, status: 'deleted' }, 1],
      ['a failed image', { ...claimed, status: 'failed' }, 1],
      ['no document', undefined, 1],
    ] as const) {
      const fenced = recordOriginal(dispatch, original)(d as ImageDoc | undefined, now);
      expect(fenced.result, what).to.equal('fenced');
      expect(fenced.next, what).to.equal(undefined);
    }
  });

  it('markDispatched sets dispatchedAt, jobCount and staleAt = now + REDISPATCH_AFTER, for the current dispatch only', () => {
    const ok = markDispatched(1, 3, 6, settings)(claimed, now);
    expect(ok.result).to.equal('marked');
    expect(ok.next).to.deep.include({ dispatchedAt: now, jobCount: 3, plannedVariants: 6, staleAt: plus(30 * MIN) });
    expect(markDispatched(0, 3, 6, settings)(claimed, now)).to.deep.equal({ result: 'fenced' });
    expect(markDispatched(1, 3, 6, settings)({ ...claimed, status: 'deleted' }, now)).to.deep.equal({
      result: 'fenced',
    });
  });

  it('releaseClaim makes an undispatched claim due now; a dispatched or newer one is fenced', () => {
    const ok = releaseClaim(1)(claimed, now);
    expect(ok.result).to.equal('released');
    expect(ok.next?.staleAt).to.deep.equal(now);
    expect(releaseClaim(1)({ ...claimed, dispatchedAt: now }, now).result, 'already dispatched').to.equal('fenced');
    expect(releaseClaim(0)(claimed, now).result, 'older dispatch').to.equal('fenced');
  });
});

describe('transitions: finishJob (the fan-in)', () => {
  const finish = (d: ImageDoc | undefined, index: number, dispatch = 0, holder = 'job:a', extra: VariantFacts[] = []) =>
    finishJob({ dispatch, index, count: 2 }, [v(`${ID}/${index}.jpg`), ...extra], build, holder, settings)(d, now);

  it('a job that is not the last records its variants and pushes staleAt on', () => {
    const { next, result } = finish(doc(), 0);
    expect(result).to.deep.equal({ kind: 'partial' });
    expect(next?.status).to.equal('processing');
    expect(next?.jobsDone).to.deep.equal([0]);
    expect(next?.variants.map((x) => x.name)).to.deep.equal([`${ID}/0.jpg`]);
    expect(next?.staleAt).to.deep.equal(plus(30 * MIN));
    expect(next?.events).to.deep.equal([]);
  });

  it('the last job makes the image ready with the manifest, its event and the outbox lease', () => {
    const { next, result } = finish(doc({ jobsDone: [0], variants: [v(`${ID}/0.jpg`)] }), 1);
    expect(result).to.deep.equal(
      { kind: 'ready', outbox: next, manifest },
      'the holder drains from the document written',
    );
    expect(next?.status).to.equal('ready');
    expect(next?.manifest).to.deep.equal(manifest);
    expect(next?.jobsDone).to.deep.equal([0, 1]);
    expect(next, 'no longer stale-able').to.not.have.property('staleAt');
    expect(next?.retainUntil).to.deep.equal(new Date(plus(-HOUR).getTime() + 30 * DAY));
    expect(next?.events.map((e) => e.event)).to.deep.equal([
      {
        v: 1,
        type: 'image.ready',
        imageId: ID,
        manifest: { bucket: 'images', name: `${ID}/manifest.json` },
        variants: 2,
        at: now.toISOString(),
      },
    ]);
    expect(seqs(next)).to.deep.equal(['1:image.ready:pending']);
    expect(next?.nextSeq).to.equal(2);
    expect(next?.outboxLease).to.deep.equal({ holder: 'job:a', until: plus(OUTBOX_LEASE_MS) });
    expect(next?.outboxDueAt).to.deep.equal(plus(OUTBOX_LEASE_MS));
  });

  it('a duplicate delivery of a finished index is counted once', () => {
    const { next, result } = finish(doc({ jobsDone: [0] }), 0);
    expect(result.kind).to.equal('partial');
    expect(next?.jobsDone).to.deep.equal([0]);
  });

  it('variant facts already recorded are kept (an object once written is final)', () => {
    const first = { ...v(`${ID}/0.jpg`), bytes: 111 };
    const { next } = finish(doc({ variants: [first] }), 0);
    expect(next?.variants).to.deep.equal([first]);
  });

  it('a job of a stale dispatch, or of a deleted or unknown image, changes nothing', () => {
    for (const [what, d, dispatch, status] of [
      ['older dispatch', doc({ dispatch: 1 }), 0, 'processing'],
      ['deleted', doc({ status: 'deleted' }), 0, 'deleted'],
      ['failed', doc({ status: 'failed', failure }), 0, 'failed'],
      ['ready without update', ready(), 0, 'ready'],
      ['no document', undefined, 0, 'unknown'],
    ] as const) {
      const { next, result } = finish(d, 1, dispatch);
      expect(result, what).to.deep.equal({ kind: 'stale', status });
      expect(next, what).to.equal(undefined);
    }
  });

  it('the last job of an update replaces the manifest and announces image.updated', () => {
    const updating = ready({
      dispatch: 1,
      update: { replaces: 'r1', recipe: 'r2' },
      jobsDone: [0],
      staleAt: plus(MIN),
      retainUntil: undefined,
    });
    const { next, result } = finish(updating, 1, 1);
    expect(result.kind).to.equal('updated');
    expect(next?.recipe).to.equal('r2');
    expect(next).to.not.have.property('update');
    expect(next?.events.at(-1)?.event).to.deep.include({ type: 'image.updated', recipe: 'r2', previousRecipe: 'r1' });
    expect(seqs(next)).to.deep.equal(['1:image.deleted:pub', '2:image.updated:pending']);
  });

  it('an update keeps the facts of only what its manifest lists: a width it drops is made again by a later update', () => {
    const dropped = v(`${ID}/640w.jpg`);
    const updating = ready({
      dispatch: 1,
      update: { replaces: 'r1', recipe: 'r2' },
      jobsDone: [0],
      staleAt: plus(MIN),
      variants: [v(`${ID}/96w.jpg`), v(`${ID}/160w.jpg`), dropped],
    });
    const { next } = finishJob({ dispatch: 1, index: 1, count: 2 }, [], build, 'job:a', settings)(updating, now);
    expect(next?.variants.map((x) => x.name)).to.deep.equal([`${ID}/96w.jpg`, `${ID}/160w.jpg`]);
    const first = finishJob(
      { dispatch: 0, index: 1, count: 2 },
      [dropped],
      build,
      'job:a',
      settings,
    )(doc({ jobsDone: [0], variants: [v(`${ID}/96w.jpg`)] }), now);
    expect(
      first.next?.variants.map((x) => x.name),
      'a first ready keeps what its jobs recorded',
    ).to.include(`${ID}/640w.jpg`);
  });
});

describe('transitions: recordEarlyVariant (the progressive status)', () => {
  const first = { ...v(`${ID}/640w.jpg`), width: 640, height: 512 };
  const withPreview: StateSettings = { ...settings, previewBaseUrl: 'https://cdn.example/images' };

  it("records a processing image's first finished variant, which the fan-in then keeps as it is", () => {
    const { next, result } = recordEarlyVariant(0, first, 'j', settings)(doc(), now);
    expect(result).to.deep.equal({ kind: 'recorded' });
    expect(next?.events, 'no image.preview unless PREVIEW_EVENT').to.deep.equal(doc().events);
    expect(next?.variants).to.deep.equal([first]);
    expect(next?.jobsDone, 'no job counted as done').to.deep.equal([]);
    expect(next?.staleAt, 'staleAt untouched').to.deep.equal(doc().staleAt);
    const finished = finishJob(
      { dispatch: 0, index: 0, count: 2 },
      [first, v(`${ID}/96w.jpg`)],
      build,
      'j',
      settings,
    )(next, now);
    expect(finished.next?.variants.map((x) => x.name)).to.deep.equal([first.name, `${ID}/96w.jpg`]);
  });

  it('writes nothing for a variant already recorded, an omission, or an update (the manifest is served)', () => {
    const updating = ready({ dispatch: 1, update: { replaces: 'r1', recipe: 'r2' }, staleAt: plus(MIN) });
    for (const [what, d, facts, dispatch] of [
      ['already recorded', doc({ variants: [first] }), first, 0],
      ['omitted', doc(), { ...first, omitted: 'larger_than_original' }, 0],
      ['update in flight', updating, first, 1],
    ] as const) {
      const { next, result } = recordEarlyVariant(dispatch, facts, 'j', withPreview)(d, now);
      expect(result, what).to.deep.equal({ kind: 'skipped' });
      expect(next, what).to.equal(undefined);
    }
  });

  it('a job of a stale dispatch, or of a deleted, failed or unknown image, records nothing', () => {
    for (const [what, d] of [
      ['older dispatch', doc({ dispatch: 1 })],
      ['deleted', doc({ status: 'deleted' })],
      ['failed', doc({ status: 'failed', failure })],
      ['no document', undefined],
    ] as const) {
      const { next, result } = recordEarlyVariant(0, first, 'j', withPreview)(d, now);
      expect(result, what).to.deep.equal({ kind: 'stale' });
      expect(next, what).to.equal(undefined);
    }
  });

  it("the status lists written variants with their format and aspect, never an omission or another image's", () => {
    const listed = finishedVariants(
      doc({
        variants: [
          { ...v(`${ID}/1x1/96w.webp`), width: 96, height: 96 },
          first,
          v(`${ID}/omitted/96w.avif`),
          { ...v(`${ID}/96w.avif`), omitted: 'larger_than_original' },
          v(`${'b'.repeat(32)}/96w.jpg`),
          v(`${ID}/96w.webp`),
        ],
      }),
      'https://cdn.test/b',
    );
    expect(listed).to.deep.equal([
      { url: `https://cdn.test/b/${ID}/96w.webp`, width: 96, height: 77, format: 'webp' },
      { url: `https://cdn.test/b/${ID}/640w.jpg`, width: 640, height: 512, format: 'jpeg' },
      { url: `https://cdn.test/b/${ID}/1x1/96w.webp`, width: 96, height: 96, format: 'webp', aspect: '1:1' },
    ]);
  });
});

describe('transitions: image.preview (PREVIEW_EVENT), queued by whichever records the first servable variant', () => {
  const withPreview: StateSettings = { ...settings, previewBaseUrl: 'https://cdn.example/images' };
  const small = { ...v(`${ID}/96w.jpg`), width: 96, height: 77 };
  const omitted = { ...v(`${ID}/omitted/96w.avif`), omitted: 'larger_than_original' };
  const previews = (d: ImageDoc | undefined) => d?.events.filter((e) => e.event.type === 'image.preview') ?? [];

  it("the early record queues it with the variant's URL, size and format, and hands its recorder the outbox", () => {
    const { next, result } = recordEarlyVariant(0, small, 'j', withPreview)(doc(), now);
    expect(result.kind).to.equal('recorded');
    expect(result.outbox, 'the recorder drains it').to.equal(next);
    expect(next?.outboxLease?.holder).to.equal('j');
    expect(next?.events.map((e) => e.event)).to.deep.equal([
      {
        v: 1,
        type: 'image.preview',
        imageId: ID,
        url: `https://cdn.example/images/${ID}/96w.jpg`,
        width: 96,
        height: 77,
        format: 'jpeg',
        at: now.toISOString(),
      },
    ]);
  });

  it('once per image: a fan-in, a duplicate delivery or a re-dispatch after it queues no second one', () => {
    const early = recordEarlyVariant(0, small, 'j', withPreview)(doc(), now).next;
    const partial = finishJob(
      { dispatch: 0, index: 0, count: 2 },
      [small, v(`${ID}/160w.jpg`)],
      build,
      'j',
      withPreview,
    )(early, now);
    expect(partial.result).to.deep.equal({ kind: 'partial' });
    expect(previews(partial.next)).to.have.length(1);
    const last = finishJob(
      { dispatch: 0, index: 1, count: 2 },
      [v(`${ID}/96w.webp`)],
      build,
      'k',
      withPreview,
    )(partial.next, now);
    expect(seqs(last.next)).to.deep.equal(['1:image.preview:pending', '2:image.ready:pending']);
    // A later dispatch of the same image (a retry) keeps the recorded variants: none again.
    const again = recordEarlyVariant(
      1,
      v(`${ID}/160w.webp`),
      'x',
      withPreview,
    )(doc({ dispatch: 1, variants: [small] }), now);
    expect(previews(again.next)).to.deep.equal([]);
  });

  it('without an early record, the fan-in queues it first: before image.ready in the same transaction', () => {
    const partial = finishJob(
      { dispatch: 0, index: 0, count: 2 },
      [omitted, small],
      build,
      'j',
      withPreview,
    )(doc(), now);
    expect(partial.result.kind).to.equal('partial');
    expect(partial.result).to.have.property('outbox', partial.next);
    expect(previews(partial.next).map((e) => (e.event.type === 'image.preview' ? e.event.url : ''))).to.deep.equal([
      `https://cdn.example/images/${ID}/96w.jpg`,
    ]);
    const only = finishJob({ dispatch: 0, index: 0, count: 1 }, [small], build, 'j', withPreview)(doc(), now);
    expect(seqs(only.next)).to.deep.equal(['1:image.preview:pending', '2:image.ready:pending']);
  });

  it('never when PREVIEW_EVENT is off, for an omission alone, or for an update', () => {
    expect(previews(recordEarlyVariant(0, small, 'j', settings)(doc(), now).next)).to.deep.equal([]);
    const off = finishJob({ dispatch: 0, index: 0, count: 1 }, [small], build, 'j', settings)(doc(), now);
    expect(seqs(off.next)).to.deep.equal(['1:image.ready:pending']);
    expect(
      previews(finishJob({ dispatch: 0, index: 0, count: 2 }, [omitted], build, 'j', withPreview)(doc(), now).next),
    ).to.deep.equal([]);
    const updating = ready({ dispatch: 1, update: { replaces: 'r1', recipe: 'r2' }, staleAt: plus(MIN), variants: [] });
    const updated = finishJob({ dispatch: 1, index: 0, count: 1 }, [small], build, 'j', withPreview)(updating, now);
    expect(previews(updated.next)).to.deep.equal([]);
  });
});

describe('transitions: failImage', () => {
  const fail = (dispatch: number | 'current', d: ImageDoc | undefined, holder = 'job:a') =>
    failImage(dispatch, { code: 'corrupt_image', message: 'bad', retryable: false }, holder, settings)(d, now);

  it('fails the current dispatch: record, image.failed in the outbox, retention set', () => {
    const { next, result } = fail(0, doc());
    expect(result).to.deep.equal({ kind: 'failed', outbox: next });
    expect(next?.status).to.equal('failed');
    expect(next?.failure).to.deep.equal({
      v: 1,
      id: ID,
      code: 'corrupt_image',
      message: 'bad',
      retryable: false,
      failedAt: now.toISOString(),
      dispatch: 0,
    });
    expect(next?.events.map((e) => e.event)).to.deep.equal([
      {
        v: 1,
        type: 'image.failed',
        imageId: ID,
        code: 'corrupt_image',
        message: 'bad',
        retryable: false,
        at: now.toISOString(),
      },
    ]);
    expect(next).to.not.have.property('staleAt');
    expect(next?.retainUntil).to.deep.equal(new Date(plus(-HOUR).getTime() + 30 * DAY));
  });

  it('a stale dispatch changes nothing', () => {
    const { next, result } = fail(0, doc({ dispatch: 1 }));
    expect(result).to.deep.equal({ kind: 'stale', status: 'processing' });
    expect(next).to.equal(undefined);
  });

  it("'current' fails whatever dispatch is current", () => {
    const { next, result } = fail('current', doc({ dispatch: 4 }));
    expect(result.kind).to.equal('failed');
    expect(next?.failure?.dispatch).to.equal(4);
  });

  it('a failed update drops the update and keeps the ready manifest, with no event', () => {
    const updating = ready({
      dispatch: 1,
      update: { replaces: 'r1', recipe: 'r2' },
      staleAt: plus(MIN),
      retainUntil: undefined,
    });
    const { next, result } = fail(1, updating);
    expect(result).to.deep.equal({ kind: 'update-dropped' });
    expect(next?.status).to.equal('ready');
    expect(next?.manifest).to.deep.equal(manifest);
    expect(next?.recipe).to.equal('r1');
    expect(next).to.not.have.property('update');
    expect(next).to.not.have.property('failure');
    expect(next?.events).to.deep.equal(updating.events);
    expect(next?.retainUntil, 'retention resumes').to.deep.equal(new Date(plus(-HOUR).getTime() + 30 * DAY));
  });
});

describe('transitions: deleteImageDoc', () => {
  it('image.deleted follows an event still pending, in seq order, and the purge is scheduled', () => {
    const pending = ready({
      events: [entry(1, true), { seq: 2, published: false, event: event('image.failed') }],
      nextSeq: 3,
    });
    const { next, result } = deleteImageDoc('upload:x')(pending, now);
    expect(result).to.deep.equal({ kind: 'deleted', outbox: next, original });
    expect(seqs(next)).to.deep.equal(['1:image.deleted:pub', '2:image.failed:pending', '3:image.deleted:pending']);
    expect(next?.status).to.equal('deleted');
    expect(next?.deletedOriginal).to.deep.equal(original);
    expect(next?.purgeAt).to.deep.equal(plus(PURGE_AFTER_MS));
    expect(next?.deletedAt).to.deep.equal(now);
    for (const field of ['original', 'manifest', 'failure', 'update', 'staleAt', 'retainUntil'])
      expect(next, field).to.not.have.property(field);
    expect(next?.variants).to.deep.equal([]);
  });

  it('an outbox leased by another holder stays theirs: not leased, due when their lease ends', () => {
    const lease = { holder: 'job:b', until: plus(MIN) };
    const { next, result } = deleteImageDoc('upload:x')(ready({ outboxLease: lease }), now);
    expect(result).to.deep.include({ kind: 'deleted', outbox: undefined });
    expect(next?.outboxLease).to.deep.equal(lease);
    expect(next?.outboxDueAt).to.deep.equal(plus(MIN));
  });

  it('an already-deleted image answers with the original to purge, and writes nothing', () => {
    const { next, result } = deleteImageDoc('x')(
      doc({ status: 'deleted', original: undefined, deletedOriginal: original }),
      now,
    );
    expect(result).to.deep.equal({ kind: 'already-deleted', original });
    expect(next).to.equal(undefined);
  });

  it('no document: not-found', () => {
    expect(deleteImageDoc('x')(undefined, now)).to.deep.equal({ result: { kind: 'not-found' } });
  });
});

describe('transitions: redispatchStuck', () => {
  const stuck = (d: ImageDoc | undefined) => redispatchStuck('cleanup', settings)(d, now);

  it('not due before staleAt, nor for finished images', () => {
    for (const [what, d] of [
      ['before staleAt', doc({ staleAt: plus(1) })],
      ['ready', ready()],
      ['failed', doc({ status: 'failed', failure })],
      ['deleted', doc({ status: 'deleted' })],
      ['no document', undefined],
    ] as const) {
      const { next, result } = stuck(d);
      expect(result, what).to.deep.equal({ kind: 'not-due' });
      expect(next, what).to.equal(undefined);
    }
  });

  it('an undispatched claim gets a new dispatch without counting a re-dispatch', () => {
    const { next, result } = stuck(doc({ dispatchedAt: undefined, jobCount: 0, staleAt: now, redispatches: 1 }));
    expect(result).to.deep.include({ kind: 'redispatch', dispatch: 1, original });
    expect(next?.redispatches).to.equal(1);
    expect(next?.staleAt).to.deep.equal(plus(UNDISPATCHED_GRACE_MS));
    expect(next).to.not.have.property('dispatchedAt');
  });

  it('a dispatched image past staleAt gets dispatch + 1 and redispatches + 1, its jobs reset', () => {
    const { next, result } = stuck(doc({ jobsDone: [0], redispatches: 1 }));
    expect(result.kind).to.equal('redispatch');
    expect(next).to.deep.include({ dispatch: 1, redispatches: 2, jobCount: 0 });
    expect(next?.jobsDone).to.deep.equal([]);
    expect(next).to.not.have.property('dispatchedAt');
  });

  it('at MAX_REDISPATCHES it gives up: processing_gave_up, retryable, with image.failed', () => {
    const { next, result } = stuck(doc({ redispatches: 2, dispatch: 2 }));
    expect(result).to.deep.equal({ kind: 'failed', code: 'processing_gave_up', outbox: next });
    expect(next?.status).to.equal('failed');
    expect(next?.failure).to.deep.include({ code: 'processing_gave_up', retryable: true, dispatch: 2 });
    expect(seqs(next)).to.deep.equal(['1:image.failed:pending']);
  });

  it('with no stored original it fails as original_missing (retryable)', () => {
    const { next, result } = stuck(doc({ original: undefined, dispatchedAt: undefined, staleAt: now }));
    expect(result).to.deep.include({ kind: 'failed', code: 'original_missing' });
    expect(next?.failure).to.deep.include({ code: 'original_missing', retryable: true });
  });

  it('a stuck update is re-dispatched as the same update; at the cap it is dropped and the manifest stays', () => {
    const updating = ready({
      dispatch: 1,
      update: { replaces: 'r1', recipe: 'r2' },
      staleAt: now,
      retainUntil: undefined,
    });
    const again = stuck(updating);
    expect(again.result.kind).to.equal('redispatch');
    expect(again.next).to.deep.include({ dispatch: 2, update: { replaces: 'r1', recipe: 'r2' }, status: 'ready' });
    const atCap = stuck({ ...updating, redispatches: 2 });
    expect(atCap.result).to.deep.equal({ kind: 'update-dropped' });
    expect(atCap.next?.manifest).to.deep.equal(manifest);
    expect(atCap.next).to.not.have.property('update');
  });
});

describe('transitions: deadLetter (fenced)', () => {
  it("an old dispatch's dead letter does not fail a newer dispatch", () => {
    const { next, result } = deadLetter(0, 'cleanup', settings)(doc({ dispatch: 1 }), now);
    expect(result).to.deep.equal({ kind: 'stale', status: 'processing' });
    expect(next).to.equal(undefined);
  });

  it("the current dispatch's dead letter fails the image, retryable", () => {
    const { next, result } = deadLetter(1, 'cleanup', settings)(doc({ dispatch: 1 }), now);
    expect(result.kind).to.equal('failed');
    expect(next?.failure).to.deep.include({ code: 'dead_lettered', retryable: true, dispatch: 1 });
  });
});

describe('transitions: releaseOriginal (retention)', () => {
  const release = (d: ImageDoc | undefined) => releaseOriginal()(d, now);

  it('not due before retainUntil, or without one', () => {
    expect(release(ready({ retainUntil: plus(1) }))).to.deep.equal({ result: {} });
    expect(release(ready({ retainUntil: undefined }))).to.deep.equal({ result: {} });
  });

  it('due: the document lets go of the original and hands it to the caller', () => {
    for (const [what, d] of [
      ['ready', ready({ retainUntil: now })],
      ['failed', doc({ status: 'failed', failure, retainUntil: now, staleAt: undefined })],
    ] as const) {
      const { next, result } = release(d);
      expect(result, what).to.deep.equal({ original });
      expect(next, what).to.not.have.property('original');
      expect(next, what).to.not.have.property('retainUntil');
    }
  });

  it('never while an update is in flight (it reads the original)', () => {
    const updating = ready({ retainUntil: now, update: { replaces: 'r1', recipe: 'r2' } });
    expect(release(updating)).to.deep.equal({ result: {} });
  });
});

describe('transitions: withEvent', () => {
  it('keeps only the last 3 published entries, all pending ones, and appends with nextSeq', () => {
    const events = [1, 2, 3, 4, 5].map((s) => entry(s, true)).concat([entry(6, false)]);
    const out = withEvent(doc({ events, nextSeq: 7 }), event(), 'h', now);
    expect(out.events.map((e) => `${e.seq}:${e.published}`)).to.deep.equal([
      '3:true',
      '4:true',
      '5:true',
      '6:false',
      '7:false',
    ]);
    expect(out.nextSeq).to.equal(8);
  });

  it('lease rules: free → taken; expired → taken; same holder → renewed; another live holder → kept, not leased', () => {
    const cases: Array<[string, ImageDoc['outboxLease'], boolean]> = [
      ['no lease', undefined, true],
      ['expired lease', { holder: 'other', until: now }, true],
      ['own lease', { holder: 'h', until: plus(MIN) }, true],
      ['live lease of another', { holder: 'other', until: plus(MIN) }, false],
    ];
    for (const [what, lease, leased] of cases) {
      const out = withEvent(doc({ outboxLease: lease }), event(), 'h', now);
      expect(out.leased, what).to.equal(leased);
      const expected = leased ? { holder: 'h', until: plus(OUTBOX_LEASE_MS) } : lease;
      expect(out.outboxLease, what).to.deep.equal(expected);
      expect(out.outboxDueAt, what).to.deep.equal(expected?.until);
    }
  });
});

describe('cleanup-sweep: isStaleIncoming', () => {
  it('an incoming/ object older than INCOMING_MAX_AGE_HOURS is stale', () => {
    expect(isStaleIncoming(plus(-25 * HOUR), 24, now)).to.equal(true);
    expect(isStaleIncoming(plus(-23 * HOUR), 24, now)).to.equal(false);
    expect(isStaleIncoming(plus(-24 * HOUR), 24, now), 'exactly at the age: not yet').to.equal(false);
  });
});
