/**
 * A 60 MB image, more than Cloud Run lets through a request, uploaded the way real clients do:
 * `POST /uploads/signed-url` on the local stack, `curl -X PUT` of the bytes straight to the local
 * storage server (which verifies the V4 signature made with the stack's throwaway key), then the
 * status URL from `waiting` to `ready` with the manifest. And the same URL PUT again after ingest
 * took the first object: storage accepts it, ingest refuses it, so one URL makes one image.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { imageIdOf } from '../../shared/core/naming.js';
import { makePhoto, noisePng } from '../fixtures/images.js';
import { eventually, serviceAsset } from '../helpers.js';
import { removeDir, startTestStack, tempDir, type TestStack } from './helpers.js';

const execFileAsync = promisify(execFile);

describe('signed-URL upload of a 60 MB image on the local stack (curl PUT to the local storage server)', function () {
  this.timeout(300_000);
  let t: TestStack;
  let dir: string;

  before(async () => {
    t = await startTestStack({ env: { WIDTHS: '320,1024' } });
    dir = tempDir('signed-upload');
  });
  after(async () => {
    await t?.stop();
    removeDir(dir);
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed' && t) console.log(`Last log lines of the stack:\n${t.tail(40)}`);
  });

  interface Signed {
    uploadUrl: string;
    method: string;
    headers: Record<string, string>;
    statusUrl: string;
    expiresAt: string;
    ticket: string;
  }

  async function sign(filename: string, size: number): Promise<{ status: number; signed: Signed }> {
    const signing = await fetch(`${t.stack.urls.api}/signed-url`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ filename, contentType: 'image/png', size }),
    });
    return { status: signing.status, signed: (await signing.json()) as Signed };
  }

  /** `curl -X PUT` of the file at `path` to the signed URL; answers the HTTP status. */
  async function curlPut(signed: Signed, path: string): Promise<string> {
    const headerArgs = Object.entries(signed.headers).flatMap(([name, value]) => ['-H', `${name}: ${value}`]);
    const { stdout } = await execFileAsync('curl', [
      '-sS',
      '-X',
      signed.method,
      ...headerArgs,
      '--data-binary',
      `@${path}`,
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      signed.uploadUrl,
    ]);
    return stdout.trim();
  }

  it('POST /uploads/signed-url → curl -X PUT → statusUrl waiting → ready with every variant', async () => {
    const image = await noisePng(4500);
    expect(image.length).to.be.greaterThan(60_000_000).and.greaterThan(t.stack.config.MAX_UPLOAD_BYTES);
    const path = join(dir, 'scan.png');
    writeFileSync(path, image);

    const { status, signed } = await sign('scan.png', image.length);
    expect(status, JSON.stringify(signed)).to.equal(201);
    expect(signed.uploadUrl.startsWith(`${t.stack.urls.storage}/${t.stack.buckets.uploads}/incoming/`)).to.equal(true);

    const waiting = await fetch(signed.statusUrl);
    expect(waiting.status).to.equal(202);
    expect(await waiting.json()).to.include({ status: 'waiting' });

    expect(await curlPut(signed, path)).to.equal('200');

    const ready = await eventually(
      async () => {
        const response = await fetch(signed.statusUrl);
        const body = (await response.json()) as {
          status?: string;
          id?: string;
          imageId?: string;
          filename?: string;
          manifest?: { original: { bytes: number; width: number }; variants: unknown[] };
        };
        if (response.status === 202) return undefined;
        return { status: response.status, body };
      },
      240_000,
      'the signed upload to be ready',
    );
    expect(ready.status, JSON.stringify(ready.body)).to.equal(200);
    expect(ready.body).to.include({ status: 'ready', imageId: imageIdOf(image), filename: 'scan.png' });
    expect(ready.body.manifest!.original).to.include({ bytes: image.length, width: 4500 });
    expect(ready.body.manifest!.original).to.not.have.property('filename');
    expect(ready.body.manifest!.variants).to.have.length(6);
  });

  it('the same URL PUT again after ingest took the first object: storage answers 200, ingest refuses it, one image', async () => {
    const first = await makePhoto({ width: 320, height: 240, format: 'png', seed: 91 });
    const second = await makePhoto({ width: 320, height: 240, format: 'png', seed: 92 });
    writeFileSync(join(dir, 'first.png'), first);
    writeFileSync(join(dir, 'second.png'), second);
    const { status, signed } = await sign('twice.png', Math.max(first.length, second.length));
    expect(status, JSON.stringify(signed)).to.equal(201);
    expect(await curlPut(signed, join(dir, 'first.png'))).to.equal('200');
    await t.waitForLog((l) => l.entry?.event === 'ingest.accept' && String(l.entry.source).includes(signed.ticket));
    const again = await curlPut(signed, join(dir, 'second.png'));
    expect(again, 'the bucket itself cannot tell: the first object is gone').to.equal('200');
    const refused = await t.waitForLog(
      (l) => l.entry?.event === 'ingest.ticket_refused' && String(l.entry.source).includes(signed.ticket),
    );
    expect(refused.entry).to.include({ reason: 'reused', ticket: signed.ticket });
    const secondStatus = await fetch(`${t.stack.urls.api}/${serviceAsset(imageIdOf(second))}`);
    expect(secondStatus.status, 'no image for the second body').to.equal(404);
    const ticketStatus = (await (await fetch(signed.statusUrl)).json()) as { id?: string; imageId?: string };
    expect(ticketStatus).to.include({ id: serviceAsset(imageIdOf(first)), imageId: imageIdOf(first) });
  });
});
