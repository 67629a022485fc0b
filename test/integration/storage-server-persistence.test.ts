/**
 * Directory persistence: a server restarted on the same directory sees the same buckets,
 * objects, bytes, generations and metadata; leftovers of a crash (temporary files, bytes whose
 * record was never committed) are cleaned up at start and never show as objects.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { Storage } from '@google-cloud/storage';
import { startStorageServer, type StorageServer } from '../../local/storage-server/index.js';
import { expectSameBytes } from '../helpers.js';

describe('storage server: directory persistence', function () {
  let dir: string;
  let server: StorageServer | undefined;

  const client = (s: StorageServer): Storage => new Storage({ apiEndpoint: s.url, projectId: 'demo-project' });

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'storage-server-dir-'));
  });
  afterEach(async () => {
    await server?.stop();
    server = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  it('objects, bytes, generations, metagenerations and metadata survive a restart', async () => {
    server = await startStorageServer({ dir, buckets: ['persisted'] });
    const bucket = client(server).bucket('persisted');
    const names = ['plain.txt', 'nested/dir/ünïcödé 📷.jpg', 'x'.repeat(600)];
    const contents = new Map(names.map((name) => [name, randomBytes(3000)]));
    for (const [name, data] of contents)
      await bucket
        .file(name)
        .save(data, { metadata: { contentType: 'image/jpeg', metadata: { name: name.slice(0, 10) } } });
    await bucket.file('plain.txt').setMetadata({ cacheControl: 'public, max-age=60' });
    await bucket.file('deleted.txt').save('gone soon');
    await bucket.file('deleted.txt').delete();
    const [before] = await bucket.getFiles();
    await server.stop();

    server = await startStorageServer({ dir });
    const again = client(server).bucket('persisted');
    expect((await again.exists())[0]).to.equal(true);
    const [after] = await again.getFiles();
    expect(after.map((f) => f.name)).to.deep.equal(before.map((f) => f.name));
    for (const file of after) {
      const original = before.find((f) => f.name === file.name)!;
      expect(file.metadata.generation).to.equal(original.metadata.generation);
      expect(file.metadata.metageneration).to.equal(original.metadata.metageneration);
      expect(file.metadata.md5Hash).to.equal(original.metadata.md5Hash);
      expect(file.metadata.metadata).to.deep.equal(original.metadata.metadata);
      const [data] = await file.download();
      expectSameBytes(data, contents.get(file.name)!, `${file.name} after the restart`);
    }
    expect((await again.file('plain.txt').getMetadata())[0]).to.include({
      metageneration: '2',
      cacheControl: 'public, max-age=60',
    });
    expect((await again.file('deleted.txt').exists())[0]).to.equal(false);

    // Generations keep increasing across restarts, so ifGenerationMatch stays meaningful.
    const oldGeneration = BigInt(after.find((f) => f.name === 'plain.txt')!.metadata.generation!);
    await again.file('plain.txt').save('newer', { preconditionOpts: { ifGenerationMatch: Number(oldGeneration) } });
    expect(BigInt((await again.file('plain.txt').getMetadata())[0].generation!) > oldGeneration).to.equal(true);
  });

  it('crash leftovers (temporary files, uncommitted bytes) are removed at start and never listed', async () => {
    server = await startStorageServer({ dir, buckets: ['crashy'] });
    await client(server).bucket('crashy').file('committed.txt').save('committed');
    await server.stop();

    // What a crash can leave: a half-written temporary file, and bytes written for a generation
    // whose record was never renamed into place.
    await writeFile(join(dir, 'tmp', 'half-written'), 'partial');
    const orphan = `${createHash('sha256').update('never-committed.txt').digest('hex')}.1234`;
    await writeFile(join(dir, 'buckets', 'crashy', 'data', orphan), 'orphaned bytes');

    server = await startStorageServer({ dir });
    const [files] = await client(server).bucket('crashy').getFiles();
    expect(files.map((f) => f.name)).to.deep.equal(['committed.txt']);
    expect(await readdir(join(dir, 'tmp'))).to.deep.equal([]);
    expect(await readdir(join(dir, 'buckets', 'crashy', 'data'))).to.have.length(1);
    expect((await files[0]!.download())[0].toString()).to.equal('committed');
  });

  it('concurrent writers to one name are serialised: the survivor is one whole write, with one data file', async () => {
    server = await startStorageServer({ dir, buckets: ['busy'] });
    const bucket = client(server).bucket('busy');
    const writes = Array.from({ length: 12 }, (_, i) => Buffer.alloc(50_000 + i, i));
    await Promise.all(writes.map((data) => bucket.file('contended.bin').save(data, { resumable: false })));
    const [data] = await bucket.file('contended.bin').download();
    const [metadata] = await bucket.file('contended.bin').getMetadata();
    const winner = writes.find((w) => w.equals(data));
    expect(winner, 'the stored bytes are exactly one of the writes').to.not.equal(undefined);
    expect(metadata.size).to.equal(String(winner!.length));
    expect(metadata.md5Hash).to.equal(createHash('md5').update(winner!).digest('base64'));
    expect(await readdir(join(dir, 'buckets', 'busy', 'data'))).to.have.length(1);
    expect(await readdir(join(dir, 'tmp'))).to.deep.equal([]);
  });

  it('concurrent ifGenerationMatch: 0 uploads with real disk writes: exactly one wins, the rest get 412', async () => {
    server = await startStorageServer({ dir, buckets: ['race'] });
    const bucket = client(server).bucket('race');
    const contenders = Array.from({ length: 10 }, (_, i) => Buffer.alloc(100_000, i));
    const results = await Promise.allSettled(
      contenders.map((data) =>
        bucket.file('first-wins.bin').save(data, { resumable: false, preconditionOpts: { ifGenerationMatch: 0 } }),
      ),
    );
    const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [contenders[i]!] : []));
    expect(won).to.have.length(1);
    for (const r of results) if (r.status === 'rejected') expect((r.reason as { code?: unknown }).code).to.equal(412);
    expectSameBytes(
      (await bucket.file('first-wins.bin').download())[0],
      won[0]!,
      'first-wins.bin: the bytes of the write that won',
    );
    expect((await bucket.file('first-wins.bin').getMetadata())[0].metageneration).to.equal('1');
  });

  it('a deleted bucket stays deleted after a restart', async () => {
    server = await startStorageServer({ dir, buckets: ['short-lived', 'kept'] });
    await client(server).bucket('short-lived').delete();
    await server.stop();
    server = await startStorageServer({ dir });
    const [buckets] = await client(server).getBuckets();
    expect(buckets.map((b) => b.name)).to.deep.equal(['kept']);
  });
});
