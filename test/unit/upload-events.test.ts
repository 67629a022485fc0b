import { expect } from 'chai';
import { EventMessageV1, type EventMessage } from '../../shared/core/schemas.js';
import { announcedTo, eventOwnerOf, uploadEventOf } from '../../shared/state/upload-events.js';

const ID = 'a'.repeat(32);
const ASSET = 'b'.repeat(32);
const at = '2026-06-01T12:00:00.000Z';
const manifest = { bucket: 'images', name: `${ID}/manifest.json` };
const asset = { id: ASSET, owner: 'user:alice', imageId: ID, metadata: { postId: 'p1' } };

describe('per-upload events (state/upload-events.ts)', () => {
  it('announces each kind of image event to an upload, with its id, owner, metadata and the manifest URL, valid by the published schema', () => {
    const images: EventMessage[] = [
      { v: 1, type: 'image.ready', imageId: ID, manifest, variants: 6, at },
      { v: 1, type: 'image.updated', imageId: ID, manifest, variants: 4, recipe: 'r2', previousRecipe: 'r1', at },
      { v: 1, type: 'image.failed', imageId: ID, code: 'corrupt_image', message: 'Damaged.', retryable: false, at },
      { v: 1, type: 'image.deleted', imageId: ID, at },
    ];
    const uploads = images.map((event) => uploadEventOf(event, asset, 'https://cdn.example/img'));
    expect(uploads.map((e) => e?.type)).to.deep.equal([
      'upload.ready',
      'upload.updated',
      'upload.failed',
      'upload.deleted',
    ]);
    for (const event of uploads) {
      expect(EventMessageV1.safeParse(event).success, JSON.stringify(event)).to.equal(true);
      expect(event).to.deep.include({ id: ASSET, imageId: ID, owner: 'alice', metadata: { postId: 'p1' }, at });
    }
    expect(uploads[0]).to.deep.include({
      manifest,
      manifestUrl: `https://cdn.example/img/${ID}/manifest.json`,
      variants: 6,
    });
    expect(uploads[1]).to.deep.include({ recipe: 'r2', previousRecipe: 'r1', variants: 4 });
    expect(uploads[2]).to.deep.include({ code: 'corrupt_image', message: 'Damaged.', retryable: false });
  });

  it("the same image event gives the same bytes (a drain again is the same webhook-id); an upload's own event is not announced again", () => {
    const ready: EventMessage = { v: 1, type: 'image.ready', imageId: ID, manifest, variants: 6, at };
    expect(JSON.stringify(uploadEventOf(ready, asset, 'https://x'))).to.equal(
      JSON.stringify(uploadEventOf(ready, asset, 'https://x')),
    );
    const own = uploadEventOf(ready, asset, 'https://x') as EventMessage;
    expect(uploadEventOf(own, asset, 'https://x')).to.equal(undefined);
  });

  it("names a user's subject as the owner and the service's uploads by none", () => {
    expect(eventOwnerOf('user:auth0|42')).to.equal('auth0|42');
    expect(eventOwnerOf('service')).to.equal(undefined);
    const event = uploadEventOf(
      { v: 1, type: 'image.deleted', imageId: ID, at },
      { ...asset, owner: 'service', metadata: undefined },
      '',
    );
    expect(event).to.not.have.property('owner');
    expect(event).to.not.have.property('metadata');
  });

  it('an image event of sequence s goes to the uploads made at or before s (assets from before sinceSeq: all)', () => {
    const assets = [
      { ...asset, id: '1'.repeat(32), sinceSeq: 1 },
      { ...asset, id: '2'.repeat(32), sinceSeq: 3 },
      { ...asset, id: '3'.repeat(32) },
    ];
    expect(announcedTo(assets, 2).map((a) => a.id[0])).to.deep.equal(['1', '3']);
    expect(announcedTo(assets, 3).map((a) => a.id[0])).to.deep.equal(['1', '2', '3']);
  });
});
