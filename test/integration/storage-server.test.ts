/**
 * Contract tests for the local storage server, driven only through @google-cloud/storage (the
 * client the pipeline uses): if these pass, the pipeline's storage code behaves the same here as
 * against Cloud Storage.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { CRC32C, Storage, type Bucket, type File } from '@google-cloud/storage';
import { startStorageServer, type StorageServer } from '../../local/storage-server/index.js';
import { crc32cBase64 } from '../../local/storage-server/checksums.js';
import { expectSameBytes } from '../helpers.js';

/** The HTTP status carried by the client's error, wherever that client path put it. */
function statusOf(error: unknown): number | undefined {
  const e = error as { code?: unknown; status?: unknown; response?: { status?: unknown } };
  for (const candidate of [e.code, e.status, e.response?.status]) {
    const n = Number(candidate);
    if (Number.isInteger(n) && n >= 100) return n;
  }
  return undefined;
}

/** Awaits `promise` and returns its rejection's status; fails the test if it resolves. */
async function rejectionStatus(promise: Promise<unknown>): Promise<number | undefined> {
  try {
    await promise;
  } catch (error) {
    return statusOf(error);
  }
  expect.fail('expected the call to fail');
}

describe('storage server: @google-cloud/storage contract', function () {
  let server: StorageServer;
  let storage: Storage;
  let bucket: Bucket;
  const log: string[] = [];
  const requests = (pattern: RegExp): string[] => log.filter((line) => pattern.test(line));

  before(async () => {
    server = await startStorageServer({ buckets: ['contract'], log: (line) => log.push(line) });
    storage = new Storage({ apiEndpoint: server.url, projectId: 'demo-project' });
    bucket = storage.bucket('contract');
  });

  after(async () => {
    await server?.stop();
  });

  afterEach(() => {
    server.clearFaults();
    log.length = 0;
  });

  describe('checksums', () => {
    it('computes the same CRC32C as the client, for every length around the 8-byte stride', () => {
      const data = randomBytes(300);
      for (let length = 0; length <= data.length; length += 7) {
        const theirs = new CRC32C();
        theirs.update(data.subarray(0, length));
        expect(crc32cBase64(data.subarray(0, length)), `length ${length}`).to.equal(theirs.toString());
      }
      // The published check value of CRC32C("123456789") is 0xE3069283.
      expect(crc32cBase64(Buffer.from('123456789'))).to.equal(Buffer.from('e3069283', 'hex').toString('base64'));
    });
  });

  describe('uploads and downloads', () => {
    const cases: Array<{ title: string; size: number; options: Record<string, unknown>; kind: RegExp }> = [
      { title: 'save, resumable (the default)', size: 1000, options: {}, kind: /uploadType=resumable/ },
      {
        title: 'save, not resumable (multipart)',
        size: 1000,
        options: { resumable: false },
        kind: /uploadType=multipart/,
      },
      { title: 'save of an empty object, resumable', size: 0, options: {}, kind: /uploadType=resumable/ },
      {
        title: 'save of an empty object, multipart',
        size: 0,
        options: { resumable: false },
        kind: /uploadType=multipart/,
      },
      { title: 'save with md5 validation', size: 5000, options: { validation: 'md5' }, kind: /uploadType=resumable/ },
    ];
    for (const { title, size, options, kind } of cases) {
      it(`${title}: stores the exact bytes and reports correct checksums`, async () => {
        const data = randomBytes(size);
        const file = bucket.file(`uploads/${title}`);
        await file.save(data, {
          ...options,
          contentType: 'image/jpeg',
          metadata: { cacheControl: 'no-store', metadata: { source: 'test' } },
        });
        expect(requests(kind), 'upload type used').to.have.length.greaterThan(0);
        const [metadata] = await file.getMetadata();
        expect(metadata.size).to.equal(String(size));
        expect(metadata.contentType).to.equal('image/jpeg');
        expect(metadata.cacheControl).to.equal('no-store');
        expect(metadata.metadata).to.deep.equal({ source: 'test' });
        expect(metadata.crc32c).to.equal(crc32cBase64(data));
        const [downloaded] = await file.download();
        expect(Buffer.compare(downloaded, data)).to.equal(0);
      });
    }

    it('createWriteStream, resumable, in 256 KiB chunks: 308s with Range, then the object', async () => {
      const data = randomBytes(700 * 1024);
      const file = bucket.file('uploads/chunked.bin');
      await new Promise<void>((resolve, reject) => {
        const stream = file.createWriteStream({ chunkSize: 256 * 1024, contentType: 'application/octet-stream' });
        stream.on('error', reject).on('finish', () => resolve());
        // Write in odd-sized pieces so chunk boundaries do not line up with writes.
        for (let at = 0; at < data.length; at += 100_000) stream.write(data.subarray(at, at + 100_000));
        stream.end();
      });
      expect(requests(/^PUT .*upload_id=.* 308 /)).to.have.length(2);
      expect(requests(/^PUT .*upload_id=.* 200 /)).to.have.length(1);
      const [downloaded] = await file.download();
      expectSameBytes(downloaded, data, 'the object downloaded');
    });

    it('createWriteStream, not resumable', async () => {
      const data = randomBytes(64 * 1024);
      const file = bucket.file('uploads/stream-simple.bin');
      await new Promise<void>((resolve, reject) => {
        file
          .createWriteStream({ resumable: false })
          .on('error', reject)
          .on('finish', () => resolve())
          .end(data);
      });
      const [downloaded] = await file.download();
      expectSameBytes(downloaded, data, 'the object downloaded');
    });

    it('createReadStream and download honour ranges (206) and whole reads validate', async () => {
      const data = randomBytes(10_000);
      const file = bucket.file('ranges/data.bin');
      await file.save(data);
      const ranges: Array<[{ start?: number; end?: number }, Buffer]> = [
        [{ start: 0, end: 0 }, data.subarray(0, 1)],
        [{ start: 100, end: 199 }, data.subarray(100, 200)],
        [{ start: 9_990 }, data.subarray(9_990)],
        [{ start: 9_000, end: 20_000 }, data.subarray(9_000)],
      ];
      for (const [range, expected] of ranges) {
        const [downloaded] = await file.download(range);
        expectSameBytes(downloaded, expected, JSON.stringify(range));
      }
      expect(requests(/alt=media 206 /)).to.have.length(ranges.length);
      const chunks: Buffer[] = [];
      await new Promise<void>((resolve, reject) => {
        file
          .createReadStream({ validation: 'crc32c' })
          .on('data', (c: Buffer) => chunks.push(c))
          .on('error', reject)
          .on('end', () => resolve());
      });
      expectSameBytes(Buffer.concat(chunks), data, 'the object streamed');
    });

    it('gzip: stored compressed, served compressed to the client (which validates and inflates), inflated for others', async () => {
      const text = Buffer.from('compressible '.repeat(2000));
      const file = bucket.file('gzip/text.txt');
      await file.save(text, { gzip: true, contentType: 'text/plain' });
      const [metadata] = await file.getMetadata();
      expect(metadata.contentEncoding).to.equal('gzip');
      expect(Number(metadata.size)).to.be.lessThan(text.length / 10);
      const [downloaded] = await file.download();
      expectSameBytes(downloaded, text, 'the gzip object downloaded (decompressed)');
      const plain = await fetch(`${server.url}/download/storage/v1/b/contract/o/gzip%2Ftext.txt?alt=media`, {
        headers: { 'Accept-Encoding': 'identity' },
      });
      expect(plain.headers.get('content-encoding')).to.equal(null);
      expectSameBytes(
        Buffer.from(await plain.arrayBuffer()),
        text,
        'the gzip object fetched with Accept-Encoding: identity',
      );
    });

    it('reads a specific generation, and 404s for one that is not live', async () => {
      const file = bucket.file('generations/a.txt');
      await file.save('first');
      const firstGeneration = file.metadata.generation!;
      await file.save('second');
      const secondGeneration = file.metadata.generation!;
      expect(BigInt(secondGeneration) > BigInt(firstGeneration)).to.equal(true);
      const [live] = await bucket.file('generations/a.txt', { generation: secondGeneration }).download();
      expect(live.toString()).to.equal('second');
      expect(
        await rejectionStatus(bucket.file('generations/a.txt', { generation: firstGeneration }).download()),
      ).to.equal(404);
    });

    it('keeps UTF-8 names, spaces, slashes and reserved characters intact', async () => {
      const names = [
        'ünïcödé/ファイル.txt',
        'with space/and+plus&amp?.txt',
        'percent%20literal',
        'emoji 📷.jpg',
        '#hash',
      ];
      for (const name of names) await bucket.file(name).save(name);
      for (const name of names) {
        const [content] = await bucket.file(name).download();
        expect(content.toString()).to.equal(name);
      }
      const [files] = await bucket.getFiles();
      expect(files.map((f) => f.name)).to.include.members(names);
    });
  });

  describe('metadata', () => {
    it('getMetadata, exists, setMetadata (merging custom metadata, bumping metageneration)', async () => {
      const file = bucket.file('meta/object.txt');
      expect((await file.exists())[0]).to.equal(false);
      await file.save('x', { metadata: { contentType: 'text/plain', metadata: { keep: 'yes', drop: 'me' } } });
      expect((await file.exists())[0]).to.equal(true);
      const [before] = await file.getMetadata();
      expect(before.metageneration).to.equal('1');
      await file.setMetadata({ contentDisposition: 'attachment', metadata: { drop: null, added: 'new' } });
      const [after] = await file.getMetadata();
      expect(after.metageneration).to.equal('2');
      expect(after.generation).to.equal(before.generation);
      expect(after.contentDisposition).to.equal('attachment');
      expect(after.contentType).to.equal('text/plain');
      expect(after.metadata).to.deep.equal({ keep: 'yes', added: 'new' });
      for (const field of [
        'bucket',
        'name',
        'md5Hash',
        'crc32c',
        'timeCreated',
        'updated',
        'selfLink',
        'mediaLink',
        'etag',
      ]) {
        expect(after, field).to.have.property(field).that.is.a('string').and.not.empty;
      }
    });

    it('a missing object is 404 for getMetadata, download, setMetadata and delete', async () => {
      const missing = bucket.file('meta/missing');
      expect(await rejectionStatus(missing.getMetadata())).to.equal(404);
      expect(await rejectionStatus(missing.download())).to.equal(404);
      expect(await rejectionStatus(missing.setMetadata({ metadata: { a: 'b' } }))).to.equal(404);
      expect(await rejectionStatus(missing.delete())).to.equal(404);
      await missing.delete({ ignoreNotFound: true });
    });
  });

  describe('preconditions', () => {
    let file: File;
    let generation: number;
    beforeEach(async () => {
      file = bucket.file(`preconditions/${randomBytes(4).toString('hex')}`);
      await file.save('content');
      generation = Number(file.metadata.generation);
    });

    type Conditions = (generation: number) => Record<string, number>;
    const table: Array<{ when: string; conditions: Conditions; ok: boolean }> = [
      { when: 'ifGenerationMatch = live generation', conditions: (g) => ({ ifGenerationMatch: g }), ok: true },
      { when: 'ifGenerationMatch = another generation', conditions: (g) => ({ ifGenerationMatch: g + 1 }), ok: false },
      { when: 'ifGenerationMatch = 0 (must not exist)', conditions: () => ({ ifGenerationMatch: 0 }), ok: false },
      { when: 'ifGenerationNotMatch = live generation', conditions: (g) => ({ ifGenerationNotMatch: g }), ok: false },
      {
        when: 'ifGenerationNotMatch = another generation',
        conditions: (g) => ({ ifGenerationNotMatch: g + 1 }),
        ok: true,
      },
      { when: 'ifMetagenerationMatch = 1', conditions: () => ({ ifMetagenerationMatch: 1 }), ok: true },
      { when: 'ifMetagenerationMatch = 2', conditions: () => ({ ifMetagenerationMatch: 2 }), ok: false },
      { when: 'ifMetagenerationNotMatch = 1', conditions: () => ({ ifMetagenerationNotMatch: 1 }), ok: false },
      { when: 'ifMetagenerationNotMatch = 2', conditions: () => ({ ifMetagenerationNotMatch: 2 }), ok: true },
    ];

    for (const { when, conditions, ok } of table) {
      it(`delete with ${when} ${ok ? 'deletes' : 'is 412 and keeps the object'}`, async () => {
        const attempt = file.delete(conditions(generation));
        if (ok) {
          await attempt;
          expect((await file.exists())[0]).to.equal(false);
        } else {
          expect(await rejectionStatus(attempt)).to.equal(412);
          expect((await file.exists())[0]).to.equal(true);
        }
      });

      it(`setMetadata with ${when} ${ok ? 'patches' : 'is 412'}`, async () => {
        const attempt = file.setMetadata({ metadata: { patched: 'yes' } }, conditions(generation));
        if (ok) {
          await attempt;
          expect((await file.getMetadata())[0].metadata).to.deep.equal({ patched: 'yes' });
        } else {
          expect(await rejectionStatus(attempt)).to.equal(412);
          expect((await file.getMetadata())[0].metadata).to.equal(undefined);
        }
      });

      it(`save with ${when} ${ok ? 'replaces' : 'is 412 and keeps the old bytes'}`, async () => {
        const attempt = file.save('replacement', { resumable: false, preconditionOpts: conditions(generation) });
        if (ok) await attempt;
        else expect(await rejectionStatus(attempt)).to.equal(412);
        const [content] = await bucket.file(file.name).download();
        expect(content.toString()).to.equal(ok ? 'replacement' : 'content');
      });

      it(`getMetadata with ${when} ${ok ? 'reads' : 'fails (412, or 304 for "not match")'}`, async () => {
        const attempt = file.getMetadata(conditions(generation));
        if (ok) expect((await attempt)[0].generation).to.equal(String(generation));
        else expect(await rejectionStatus(attempt)).to.equal(/NotMatch/.test(when) ? 304 : 412);
      });
    }

    it('save with ifGenerationMatch: 0 creates only when absent (resumable and not)', async () => {
      const fresh = bucket.file(`preconditions/fresh-${randomBytes(4).toString('hex')}`);
      await fresh.save('one', { preconditionOpts: { ifGenerationMatch: 0 } });
      expect(await rejectionStatus(fresh.save('two', { preconditionOpts: { ifGenerationMatch: 0 } }))).to.equal(412);
      expect(
        await rejectionStatus(fresh.save('two', { resumable: false, preconditionOpts: { ifGenerationMatch: 0 } })),
      ).to.equal(412);
      expect((await fresh.download())[0].toString()).to.equal('one');
    });

    it('delete of a missing object is 404 even with preconditions', async () => {
      expect(await rejectionStatus(bucket.file('preconditions/never').delete({ ifGenerationMatch: 5 }))).to.equal(404);
    });

    for (const resumable of [false, true]) {
      it(`concurrent saves with ifGenerationMatch: 0 (${resumable ? 'resumable' : 'multipart'}): exactly one wins`, async () => {
        const target = bucket.file(`preconditions/race-${resumable}`);
        const contenders = Array.from({ length: 8 }, (_, i) => `contender ${i}`);
        const results = await Promise.allSettled(
          contenders.map((content) =>
            bucket.file(target.name).save(content, { resumable, preconditionOpts: { ifGenerationMatch: 0 } }),
          ),
        );
        const winners = results.flatMap((r, i) => (r.status === 'fulfilled' ? [contenders[i]!] : []));
        expect(winners).to.have.length(1);
        for (const r of results) if (r.status === 'rejected') expect(statusOf(r.reason)).to.equal(412);
        const [content] = await target.download();
        expect(content.toString()).to.equal(winners[0]);
        expect((await target.getMetadata())[0].metageneration).to.equal('1');
      });
    }
  });

  describe('listing', () => {
    const names = ['list/a/1', 'list/a/2', 'list/b/1', 'list/b/2/deep', 'list/c', 'list/d', 'list/e'];
    before(async () => {
      await Promise.all(names.map((name) => bucket.file(name).save(name)));
    });

    it('getFiles with a prefix, in name order', async () => {
      const [files] = await bucket.getFiles({ prefix: 'list/' });
      expect(files.map((f) => f.name)).to.deep.equal(names);
    });

    it('getFiles with a delimiter returns items and prefixes', async () => {
      const [files, , response] = await bucket.getFiles({ prefix: 'list/', delimiter: '/', autoPaginate: false });
      expect(files.map((f) => f.name)).to.deep.equal(['list/c', 'list/d', 'list/e']);
      expect((response as { prefixes?: string[] }).prefixes).to.deep.equal(['list/a/', 'list/b/']);
    });

    it('pages through more than one page, with and without a delimiter', async () => {
      for (const [delimiter, expected] of [
        [undefined, names],
        ['/', ['list/a/', 'list/b/', 'list/c', 'list/d', 'list/e']],
      ] as const) {
        const seen: string[] = [];
        let query: Record<string, unknown> | null = {
          prefix: 'list/',
          maxResults: 2,
          autoPaginate: false,
          ...(delimiter ? { delimiter } : {}),
        };
        let pages = 0;
        while (query) {
          const [files, next, response]: [File[], Record<string, unknown> | null, unknown] = (await bucket.getFiles(
            query,
          )) as never;
          pages++;
          expect(files.length + ((response as { prefixes?: string[] }).prefixes?.length ?? 0)).to.be.at.most(2);
          seen.push(...((response as { prefixes?: string[] }).prefixes ?? []), ...files.map((f) => f.name));
          query = next;
        }
        expect([...seen].sort()).to.deep.equal([...expected].sort());
        expect(seen).to.have.length(expected.length);
        expect(pages).to.equal(Math.ceil(expected.length / 2));
      }
    });

    it('autoPaginate collects every page', async () => {
      const [files] = await bucket.getFiles({ prefix: 'list/', maxResults: 1000 });
      expect(files).to.have.length(names.length);
    });

    it('startOffset and endOffset bound the names; includeFoldersAsPrefixes is ignored', async () => {
      const [files] = await bucket.getFiles({
        startOffset: 'list/b',
        endOffset: 'list/d',
        includeFoldersAsPrefixes: true,
      } as never);
      expect(files.map((f) => f.name)).to.deep.equal(['list/b/1', 'list/b/2/deep', 'list/c']);
    });

    it('matchGlob filters names', async () => {
      const [files] = await bucket.getFiles({ matchGlob: 'list/*/1' });
      expect(files.map((f) => f.name)).to.deep.equal(['list/a/1', 'list/b/1']);
    });
  });

  describe('copy and move', () => {
    it('copy within and across buckets, with ifGenerationMatch: 0 on the destination', async () => {
      await storage.createBucket('contract-other');
      const source = bucket.file('copy/source.txt');
      await source.save('copy me', { contentType: 'text/plain', metadata: { metadata: { k: 'v' } } });
      const [copied] = await source.copy(bucket.file('copy/same-bucket.txt'), {
        preconditionOpts: { ifGenerationMatch: 0 },
      });
      const [across] = await source.copy(storage.bucket('contract-other').file('copy/across.txt'), {
        preconditionOpts: { ifGenerationMatch: 0 },
      });
      for (const file of [copied, across]) {
        expect((await file.download())[0].toString()).to.equal('copy me');
        const [metadata] = await file.getMetadata();
        expect(metadata.contentType).to.equal('text/plain');
        expect(metadata.metadata).to.deep.equal({ k: 'v' });
      }
      expect(requests(/rewriteTo/)).to.have.length(2);
      expect(
        await rejectionStatus(
          source.copy(bucket.file('copy/same-bucket.txt'), { preconditionOpts: { ifGenerationMatch: 0 } }),
        ),
      ).to.equal(412);
      expect((await source.exists())[0]).to.equal(true);
    });

    it('move with ifGenerationMatch: 0 copies then deletes the source; a taken destination stops it', async () => {
      const source = bucket.file('move/source.txt');
      await source.save('move me');
      await source.move('move/destination.txt', { preconditionOpts: { ifGenerationMatch: 0 } });
      const moved = bucket.file('move/destination.txt');
      expect((await moved.download())[0].toString()).to.equal('move me');
      expect((await source.exists())[0]).to.equal(false);

      await source.save('second');
      expect(
        await rejectionStatus(source.move('move/destination.txt', { preconditionOpts: { ifGenerationMatch: 0 } })),
      ).to.equal(412);
      expect((await source.exists())[0]).to.equal(true);
      expect((await moved.download())[0].toString()).to.equal('move me');
    });

    it('moveFileAtomic renames in one request', async () => {
      const source = bucket.file('move/atomic-source.txt');
      await source.save('atomic');
      await source.moveFileAtomic('move/atomic-destination.txt', { preconditionOpts: { ifGenerationMatch: 0 } });
      expect((await source.exists())[0]).to.equal(false);
      expect((await bucket.file('move/atomic-destination.txt').download())[0].toString()).to.equal('atomic');
    });

    it('combine (compose) concatenates sources; the result has a CRC32C and no MD5', async () => {
      const parts = ['alpha-', 'beta-', 'gamma'];
      await Promise.all(parts.map((p, i) => bucket.file(`compose/part-${i}`).save(p)));
      const [combined] = await bucket.combine(
        parts.map((_, i) => `compose/part-${i}`),
        'compose/combined',
      );
      const [metadata] = await combined.getMetadata();
      expect(metadata.componentCount).to.equal(3);
      expect(metadata.md5Hash).to.equal(undefined);
      expect((await combined.download())[0].toString()).to.equal(parts.join(''));
    });
  });

  describe('buckets', () => {
    it('create, get, list, and delete only when empty', async () => {
      const [created] = await storage.createBucket('contract-buckets');
      expect(created.name).to.equal('contract-buckets');
      expect(await rejectionStatus(storage.createBucket('contract-buckets'))).to.equal(409);
      expect((await storage.bucket('contract-buckets').exists())[0]).to.equal(true);
      const [buckets] = await storage.getBuckets();
      expect(buckets.map((b) => b.name)).to.include('contract-buckets');
      await storage.bucket('contract-buckets').file('blocker').save('x');
      expect(await rejectionStatus(storage.bucket('contract-buckets').delete())).to.equal(409);
      await storage.bucket('contract-buckets').file('blocker').delete();
      await storage.bucket('contract-buckets').delete();
      expect((await storage.bucket('contract-buckets').exists())[0]).to.equal(false);
    });

    it('a missing bucket is 404 without autoCreateBuckets', async () => {
      expect(
        await rejectionStatus(storage.bucket('no-such-bucket').file('x').save('x', { resumable: false })),
      ).to.equal(404);
      expect(await rejectionStatus(storage.bucket('no-such-bucket').getFiles())).to.equal(404);
    });

    it('autoCreateBuckets creates a bucket on first use', async () => {
      const auto = await startStorageServer({ autoCreateBuckets: true });
      try {
        const client = new Storage({ apiEndpoint: auto.url, projectId: 'demo-project' });
        await client.bucket('made-on-demand').file('a.txt').save('a');
        expect((await client.bucket('made-on-demand').exists())[0]).to.equal(true);
      } finally {
        await auto.stop();
      }
    });
  });

  describe('fault injection', () => {
    // A fresh client per test: the client switches retries off on its shared options for
    // non-idempotent calls and does not always switch them back after a failure, so earlier
    // tests' 412s would leak into these. Capping retry delays at 1 s (the minimum the client accepts) keeps this fast; the retries
    // are still the client's own.
    let retrying: Bucket;
    beforeEach(() => {
      retrying = new Storage({
        apiEndpoint: server.url,
        projectId: 'demo-project',
        retryOptions: { maxRetryDelay: 1 },
      }).bucket('contract');
    });

    it("a 503 on download is retried by the client's own retry and succeeds", async () => {
      const file = retrying.file('faults/read.txt');
      await file.save('survives');
      server.injectFault({ method: 'GET', path: /faults%2Fread\.txt\?.*alt=media/, status: 503, times: 1 });
      const [content] = await file.download();
      expect(content.toString()).to.equal('survives');
      expect(requests(/injected 503/)).to.have.length(1);
      expect(requests(/alt=media 503 /)).to.have.length(1);
      expect(requests(/alt=media 200 /)).to.have.length(1);
    });

    it('a 503 on a conditional resumable upload is retried and succeeds', async () => {
      const file = retrying.file('faults/write.txt');
      server.injectFault({ method: 'POST', path: '/upload/storage/v1/b/contract/o', status: 503, times: 1 });
      await file.save('written', { preconditionOpts: { ifGenerationMatch: 0 } });
      expect(requests(/injected 503/)).to.have.length(1);
      expect((await file.download())[0].toString()).to.equal('written');
    });

    it('a 503 on getMetadata is retried; a persistent 404 fault is not', async () => {
      const file = retrying.file('faults/meta.txt');
      await file.save('m');
      server.injectFault({ method: 'GET', path: 'faults%2Fmeta.txt', status: 503, times: 1 });
      expect((await file.getMetadata())[0].name).to.equal('faults/meta.txt');
      server.injectFault({ method: 'GET', path: 'faults%2Fmeta.txt', status: 404, times: 3 });
      expect(await rejectionStatus(file.getMetadata())).to.equal(404);
      server.clearFaults();
      expect((await file.getMetadata())[0].name).to.equal('faults/meta.txt');
    });

    it('holdRequests holds the first matching request until released: a second write goes first', async () => {
      const file = retrying.file('faults/held.txt');
      const held = server.holdRequests({ method: 'POST', path: 'faults%2Fheld.txt' });
      const first = file.save('first', { resumable: false });
      await held.arrived;
      await retrying.file('faults/other.txt').save('meanwhile', { resumable: false });
      await file.getMetadata().then(
        () => expect.fail('the held write must not have landed'),
        (error: { code?: number }) => expect(error.code).to.equal(404),
      );
      held.release();
      await first;
      expect((await file.download())[0].toString()).to.equal('first');
    });

    it('latency delays matching requests', async () => {
      const file = retrying.file('faults/slow.txt');
      await file.save('slow');
      server.injectFault({ path: 'faults%2Fslow.txt', latencyMs: 300 });
      const started = Date.now();
      await file.getMetadata();
      expect(Date.now() - started).to.be.at.least(290);
    });
  });
});
