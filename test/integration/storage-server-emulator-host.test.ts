/**
 * The local storage server with the official client pointed at it the usual way,
 * STORAGE_EMULATOR_HOST (what a user's own script or a tool sets), rather than `apiEndpoint`:
 * the client then sends JSON API calls without `/storage/v1`, and the server takes them.
 */
import { expect } from 'chai';
import { Storage } from '@google-cloud/storage';
import { startStorageServer, type StorageServer } from '../../local/storage-server/index.js';

describe('storage server: @google-cloud/storage with STORAGE_EMULATOR_HOST', function () {
  let server: StorageServer;
  let storage: Storage;
  const previous = process.env.STORAGE_EMULATOR_HOST;
  const log: string[] = [];

  before(async () => {
    server = await startStorageServer({ buckets: ['emulator-host'], log: (line) => log.push(line) });
    // The client reads the variable when it is constructed (and, for some calls, again later).
    process.env.STORAGE_EMULATOR_HOST = server.url;
    storage = new Storage({ projectId: 'local-project' });
  });
  after(async () => {
    if (previous === undefined) delete process.env.STORAGE_EMULATOR_HOST;
    else process.env.STORAGE_EMULATOR_HOST = previous;
    await server.stop();
  });

  it('writes, reads, lists, updates and deletes objects through routes without /storage/v1', async () => {
    const bucket = storage.bucket('emulator-host');
    const file = bucket.file('dir/photo.bin');
    await file.save(Buffer.from('pixels'), { contentType: 'application/octet-stream', resumable: false });
    const [contents] = await file.download();
    expect(contents.toString()).to.equal('pixels');
    const [files] = await bucket.getFiles({ prefix: 'dir/' });
    expect(files.map((f) => f.name)).to.deep.equal(['dir/photo.bin']);
    await file.setMetadata({ metadata: { seen: 'yes' } });
    const [metadata] = await file.getMetadata();
    expect(metadata.metadata).to.deep.equal({ seen: 'yes' });
    await file.delete();
    const [exists] = await file.exists();
    expect(exists).to.equal(false);
    expect(log.filter((line) => /UNKNOWN ROUTE/.test(line))).to.deep.equal([]);
  });
});
