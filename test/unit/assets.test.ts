/**
 * Assets (shared/state/assets.ts) as the pure decisions they are: creating an owner's asset with
 * the image's claim and the quota charge, removing one (the last takes the image), the asset id
 * and the list cursor. The transactions around them are tested in test/integration/assets.test.ts.
 */
import { expect } from 'chai';
import { SERVICE_OWNER } from '../../shared/auth/principal.js';
import type { Quotas } from '../../shared/auth/settings.js';
import { PipelineError } from '../../shared/core/errors.js';
import { assetIdOf, imageIdOf } from '../../shared/core/naming.js';
import { AssetId } from '../../shared/core/schemas.js';
import {
  type AssetClaim,
  type AssetDoc,
  addAsset,
  decodeAssetCursor,
  encodeAssetCursor,
  removeAsset,
} from '../../shared/state/assets.js';
import type { ImageDoc } from '../../shared/state/image-doc.js';
import { type AcceptFacts, claimForAccept } from '../../shared/state/transitions.js';

const now = new Date('2026-06-01T12:00:00Z');
const ID = 'b'.repeat(32);
const info = { format: 'jpeg', width: 200, height: 160, bytes: 1000, contentType: 'image/jpeg' };
const facts: AcceptFacts = { id: ID, info, source: 'upload', acceptedAt: now, recipe: 'r1', plannedVariants: 6 };
const limits: Quotas = { uploadsPerDay: 2, bytesPerDay: 0, openTickets: 0 };
const announcer = { holder: 'accept:1', publicBaseUrl: 'https://img.example', imagesBucket: 'images' };
const claimOf = (owner: string, extra: Partial<AssetClaim> = {}): AssetClaim => ({
  owner,
  imageId: ID,
  source: 'upload',
  bytes: 1000,
  chargeQuota: true,
  quotas: limits,
  announcer,
  ...extra,
});
const always = () => true;
const none = { asset: undefined, image: undefined, owner: undefined };
/** An upload of an image nobody has yet. */
const fresh = (claim: AssetClaim) => addAsset(none, claim, claimForAccept(facts), always, now);

describe('assets (state/assets.ts)', () => {
  it('names an asset by owner and image: 32 lowercase hex, deterministic, different per owner', () => {
    const alice = assetIdOf('user:alice', ID);
    expect(AssetId.safeParse(alice).success).to.equal(true);
    expect(assetIdOf('user:alice', ID)).to.equal(alice);
    expect(assetIdOf('user:bob', ID)).to.not.equal(alice);
    expect(assetIdOf('user:alice', 'c'.repeat(32))).to.not.equal(alice);
    expect(alice, 'never the image id itself').to.not.equal(ID);
  });

  it('makes the focus part of the image id only when one is given', () => {
    const bytes = Buffer.from('same bytes');
    expect(imageIdOf(bytes, undefined)).to.equal(imageIdOf(bytes));
    expect(imageIdOf(bytes, { x: 0.2, y: 0.5 })).to.not.equal(imageIdOf(bytes));
    expect(imageIdOf(bytes, { x: 0.2, y: 0.5 })).to.equal(imageIdOf(bytes, { x: 0.20001, y: 0.5 }));
    expect(imageIdOf(bytes, { x: 0.2, y: 0.5 })).to.not.equal(imageIdOf(bytes, { x: 0.7, y: 0.5 }));
  });

  it('creates the asset with the claim: counts it on the image and charges the owner once', () => {
    const decided = fresh(claimOf('user:alice', { filename: 'a.jpg', focus: { x: 0.1, y: 0.2 } }));
    expect(decided.created).to.equal(true);
    expect(decided.result.kind).to.equal('claimed');
    expect(decided.image).to.deep.include({ status: 'processing', assets: 1 });
    expect(decided.asset).to.deep.equal({
      v: 1,
      id: assetIdOf('user:alice', ID),
      owner: 'user:alice',
      imageId: ID,
      filename: 'a.jpg',
      focus: { x: 0.1, y: 0.2 },
      source: 'upload',
      bytes: 1000,
      sinceSeq: 1,
      createdAt: now,
    });
    expect(decided.owner).to.deep.include({ owner: 'user:alice', uploads: 1, bytes: 1000, day: '2026-06-01' });
    expect(decided.image?.events, 'nothing to announce yet: the image.ready to come is').to.deep.equal([]);
  });

  it("another owner's asset of a ready image: the count goes up, the image is not claimed again, and the new upload gets its own upload.ready at once", () => {
    const first = fresh(claimOf('user:alice'));
    const manifest = { v: 1, variants: [{}, {}, {}] };
    const readyEvent = { seq: 1, published: true, event: { v: 1, type: 'image.ready', imageId: ID } };
    const ready = {
      ...(first.image as ImageDoc),
      status: 'ready',
      manifest,
      events: [readyEvent],
      nextSeq: 2,
    } as unknown as ImageDoc;
    const second = addAsset(
      { asset: undefined, image: ready, owner: undefined },
      claimOf('user:bob', { metadata: { postId: 'p1', draft: false } }),
      claimForAccept(facts),
      always,
      now,
    );
    expect(second.result.kind).to.equal('ready');
    expect(second.image).to.deep.include({ status: 'ready', assets: 2, dispatch: ready.dispatch, nextSeq: 3 });
    expect(second.asset).to.deep.include({ owner: 'user:bob', sinceSeq: 2, metadata: { postId: 'p1', draft: false } });
    expect(second.image?.events[1]).to.deep.equal({
      seq: 2,
      published: false,
      event: {
        v: 1,
        type: 'upload.ready',
        id: assetIdOf('user:bob', ID),
        imageId: ID,
        owner: 'bob',
        metadata: { postId: 'p1', draft: false },
        manifest: { bucket: 'images', name: `${ID}/manifest.json` },
        manifestUrl: `https://img.example/${ID}/manifest.json`,
        variants: 3,
        at: now.toISOString(),
      },
    });
    expect(second.outbox, 'the outbox, leased to the announcer').to.equal(second.image);
    expect(second.image?.outboxLease?.holder).to.equal('accept:1');
  });

  it('a new upload of an image that failed for good gets its own upload.failed; one of an image in flight gets nothing now', () => {
    const failure = { v: 1, id: ID, code: 'corrupt_image', message: 'Damaged.', failedAt: now.toISOString() };
    const failed = {
      ...(fresh(claimOf('user:alice')).image as ImageDoc),
      status: 'failed',
      failure,
      nextSeq: 2,
    } as unknown as ImageDoc;
    const decided = addAsset(
      { asset: undefined, image: failed, owner: undefined },
      claimOf(SERVICE_OWNER),
      claimForAccept(facts),
      always,
      now,
    );
    const event = decided.image?.events.at(-1)?.event;
    expect(event).to.deep.include({ type: 'upload.failed', id: assetIdOf(SERVICE_OWNER, ID), code: 'corrupt_image' });
    expect(event, "the service's own upload names no owner").to.not.have.property('owner');
    const inFlight = fresh(claimOf('user:alice')).image as ImageDoc;
    const later = addAsset(
      { asset: undefined, image: inFlight, owner: undefined },
      claimOf('user:bob'),
      claimForAccept(facts),
      always,
      now,
    );
    expect(later.image?.events, 'the image.ready to come announces it').to.deep.equal([]);
    expect(later.outbox).to.equal(undefined);
  });

  it("a ready image made before assets (no count) uploaded by another owner keeps the service's claim: both assets written", () => {
    const legacy = {
      ...(facts as unknown as ImageDoc),
      status: 'ready',
      manifest: { v: 1, variants: [{}] },
      info,
      source: 'upload',
      events: [],
      nextSeq: 4,
    } as unknown as ImageDoc;
    const decided = addAsset(
      { asset: undefined, image: legacy, owner: undefined },
      claimOf('user:bob'),
      claimForAccept(facts),
      always,
      now,
    );
    expect(decided.image).to.deep.include({ assets: 2 });
    expect(decided.legacy).to.deep.include({
      id: assetIdOf(SERVICE_OWNER, ID),
      owner: SERVICE_OWNER,
      imageId: ID,
      sinceSeq: 4,
    });
    expect(decided.asset?.owner).to.equal('user:bob');
    const own = addAsset(
      { asset: undefined, image: legacy, owner: undefined },
      claimOf(SERVICE_OWNER),
      claimForAccept(facts),
      always,
      now,
    );
    expect(own.image, "the service's own upload is that asset").to.deep.include({ assets: 1 });
    expect(own.legacy).to.equal(undefined);
  });

  it('the same owner again finds its asset: nothing written for a ready image, nothing charged', () => {
    const ready = { ...(facts as unknown as ImageDoc), status: 'ready', recipe: 'r1', assets: 1 } as ImageDoc;
    const asset = { id: assetIdOf('user:alice', ID), owner: 'user:alice', imageId: ID } as AssetDoc;
    const decided = addAsset(
      { asset, image: ready, owner: undefined },
      claimOf('user:alice'),
      claimForAccept(facts),
      always,
      now,
    );
    expect(decided).to.deep.include({ created: false });
    expect(decided.image).to.equal(undefined);
    expect(decided.asset).to.equal(undefined);
    expect(decided.owner).to.equal(undefined);
  });

  it('refuses a new asset past the quota (429 quota_exceeded) and writes nothing', () => {
    const owner = {
      v: 1 as const,
      owner: 'user:alice',
      day: '2026-06-01',
      uploads: 2,
      bytes: 2000,
      openTickets: [],
      updatedAt: now,
    };
    let thrown: unknown;
    try {
      addAsset(
        { asset: undefined, image: undefined, owner },
        claimOf('user:alice'),
        claimForAccept(facts),
        always,
        now,
      );
    } catch (error) {
      thrown = error;
    }
    expect(thrown).to.be.instanceOf(PipelineError);
    expect((thrown as PipelineError).code).to.equal('quota_exceeded');
    expect((thrown as PipelineError).details).to.deep.include({
      quota: 'uploads_per_day',
      retryAfterSeconds: 12 * 3600,
    });
  });

  it('charges nothing when told not to (a ticket paid at minting) nor to the service', () => {
    const noCharge = fresh(claimOf('user:alice', { chargeQuota: false }));
    expect(noCharge.created).to.equal(true);
    expect(noCharge.owner).to.equal(undefined);
    const service = fresh(claimOf(SERVICE_OWNER));
    expect(service.owner).to.equal(undefined);
  });

  it('makes no asset when keep says the result stands for none (an image being purged)', () => {
    const purging = {
      ...(facts as unknown as ImageDoc),
      status: 'deleted',
      purgingUntil: new Date(now.getTime() + 60_000),
      assets: 0,
    } as ImageDoc;
    const decided = addAsset(
      { asset: undefined, image: purging, owner: undefined },
      claimOf('user:alice'),
      claimForAccept(facts),
      (d) => d.kind !== 'deleting',
      now,
    );
    expect(decided.result.kind).to.equal('deleting');
    expect(decided).to.deep.include({ created: false });
    expect(decided.asset).to.equal(undefined);
  });

  describe('removeAsset', () => {
    const base = {
      ...(facts as unknown as ImageDoc),
      v: 1,
      status: 'ready',
      dispatch: 0,
      variants: [],
      jobsDone: [0],
      events: [],
      nextSeq: 2,
    } as unknown as ImageDoc;
    const asset = { id: assetIdOf('user:alice', ID), owner: 'user:alice', imageId: ID } as AssetDoc;

    it("another owner's asset is not found, and nothing is written", () => {
      const decided = removeAsset(asset, { ...base, assets: 2 }, 'user:bob', 'h', now);
      expect(decided).to.deep.equal({ deleteAsset: false, result: { kind: 'not-found' } });
      expect(removeAsset(undefined, base, 'user:alice', 'h', now).result.kind).to.equal('not-found');
    });

    it('the service names an image made before assets (no count) by its image id: it goes; nobody else can', () => {
      const decided = removeAsset(undefined, base, SERVICE_OWNER, 'h', now);
      expect(decided.deleteAsset).to.equal(false);
      expect(decided.result.kind).to.equal('image-deleted');
      expect(decided.image).to.deep.include({ status: 'deleted', assets: 0 });
      expect(removeAsset(undefined, base, 'user:bob', 'h', now).result.kind).to.equal('not-found');
      const counted = removeAsset(undefined, { ...base, assets: 1 }, SERVICE_OWNER, 'h', now);
      expect(counted.result.kind, 'an image with a count is named by its assets only').to.equal('not-found');
    });

    it('one of two assets: the asset goes, the image stays with one', () => {
      const decided = removeAsset(asset, { ...base, assets: 2 }, 'user:alice', 'h', now);
      expect(decided.deleteAsset).to.equal(true);
      expect(decided.result).to.deep.include({ kind: 'kept', imageId: ID, assets: 1 });
      expect(decided.image).to.deep.include({ status: 'ready', assets: 1 });
      expect(
        decided.image?.events.map((e) => e.event),
        'its upload.deleted, with the decision',
      ).to.deep.equal([
        { v: 1, type: 'upload.deleted', id: asset.id, imageId: ID, owner: 'alice', at: now.toISOString() },
      ]);
      expect(decided.result.kind === 'kept' && decided.result.outbox, 'leased to the deleter').to.equal(decided.image);
    });

    it('the last asset: the image is deleted in the same decision, image.deleted queued', () => {
      const decided = removeAsset(asset, { ...base, assets: 1 }, 'user:alice', 'h', now);
      expect(decided.deleteAsset).to.equal(true);
      expect(decided.result.kind).to.equal('image-deleted');
      expect(decided.image).to.deep.include({ status: 'deleted', assets: 0 });
      expect(
        decided.image?.events.map((e) => e.event.type),
        'the upload’s, then the image’s',
      ).to.deep.equal(['upload.deleted', 'image.deleted']);
    });
  });

  it('list cursors round-trip and anything else is refused', () => {
    const cursor = { createdAt: new Date('2026-06-01T12:00:00.123Z'), id: 'd'.repeat(32) };
    const encoded = encodeAssetCursor(cursor);
    expect(encoded).to.match(/^[A-Za-z0-9_-]+$/);
    expect(decodeAssetCursor(encoded)).to.deep.equal(cursor);
    for (const bad of ['', 'x', '!!!', Buffer.from('12.zz').toString('base64url'), 'a'.repeat(300)])
      expect(decodeAssetCursor(bad), bad).to.equal(undefined);
  });
});
