/**
 * A 60 MB image, more than Cloud Run lets through a request, uploaded the way real clients do:
 * `POST /uploads/signed-url` on the local stack, `curl -X PUT` of the bytes straight to the local
 * storage server (which verifies the V4 signature made with the stack's throwaway key), then the
 * status URL from `waiting` to `ready` with the manifest.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { imageIdOf } from '../../shared/core/naming.js';
import { noisePng } from '../fixtures/images.js';
import { eventually } from '../helpers.js';
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

  it('POST /uploads/signed-url → curl -X PUT → statusUrl waiting → ready with every variant', async () => {
    const image = await noisePng(4500);
    expect(image.length).to.be.greaterThan(60_000_000).and.greaterThan(t.stack.config.MAX_UPLOAD_BYTES);
    const path = join(dir, 'scan.png');
    writeFileSync(path, image);

    const signing = await fetch(`${t.stack.urls.api}/signed-url`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ filename: 'scan.png', contentType: 'image/png', size: image.length }),
    });
    const signed = (await signing.json()) as {
      uploadUrl: string;
      method: string;
      headers: Record<string, string>;
      statusUrl: string;
      expiresAt: string;
    };
    expect(signing.status, JSON.stringify(signed)).to.equal(201);
    expect(signed.uploadUrl.startsWith(`${t.stack.urls.storage}/${t.stack.buckets.uploads}/incoming/`)).to.equal(true);

    const waiting = await fetch(signed.statusUrl);
    expect(waiting.status).to.equal(202);
    expect(await waiting.json()).to.include({ status: 'waiting' });

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
    expect(stdout.trim()).to.equal('200');

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
});
