/**
 * Hostile inputs: hostile file names, through every path, are sanitised before they are kept on
 * the upload's asset (and never reach the original's public metadata).
 *
 * Split from the former hostile.test.ts; each hostile-*.test.ts file starts its own pipeline
 * (test/fixtures/hostile.ts) and runs alone or with the others in any order.
 */
import { expect } from 'chai';
import { imageIdOf, originalName } from '../../shared/core/naming.js';
import { readAsset } from '../../shared/state/assets.js';
import { hostileSuite, validPhoto } from '../fixtures/hostile.js';
import { serviceAsset } from '../helpers.js';

describe('hostile inputs: hostile file names are sanitised before they are kept', function () {
  this.timeout(120_000);
  const h = hostileSuite();
  const { rows, auth, api, uploads, ingestObject } = h;

  const names: Array<[string, string, string]> = [
    // [what, the client's name, what the asset must hold]
    ['a path with ../', '../../etc/passwd.jpg', 'passwd.jpg'],
    ['a Windows path', '..\\..\\Windows\\win.ini.jpg', 'win.ini.jpg'],
    ['NUL', 'nul\u0000byte.jpg', 'nulbyte.jpg'],
    ['CR LF and a header', 'evil\r\nX-Injected: 1.jpg', 'evilX-Injected: 1.jpg'],
    ['quotes and a tab', 'say "cheese"\t.jpg', 'say cheese.jpg'],
    ['300 characters', `${'a'.repeat(296)}.jpg`, 'a'.repeat(200)],
    ['only dots', '..', ''],
    ['non-Latin-1 characters', '写真 📷 Ünïcödé.jpg', '写真 📷 Ünïcödé.jpg'],
  ];
  const check = async (id: string, expected: string) => {
    const [metadata] = await uploads().file(originalName(id)).getMetadata();
    expect(metadata.metadata, 'no file name in public metadata').to.not.have.property('filename');
    const stored = (await readAsset(h.pipeline.deps, serviceAsset(id)))?.filename;
    if (expected === '') expect(stored).to.equal(undefined);
    else expect(stored).to.equal(expected);
    if (typeof stored === 'string') {
      // biome-ignore lint/suspicious/noControlCharactersInRegex: asserts the sanitised name has no C0 controls or DEL
      expect(stored).not.to.match(/[\u0000-\u001f\u007f"\\/]/);
      expect([...stored].length).to.be.at.most(200);
    }
  };

  names.forEach(([what, raw, expected], index) => {
    it(`${what} via multipart (filename*=UTF-8): stored as ${JSON.stringify(expected.slice(0, 24))}`, async () => {
      const photo = await validPhoto(500 + index);
      const body = `--B0undary\r\nContent-Disposition: form-data; name="file"; filename*=UTF-8''${encodeURIComponent(raw)}\r\nContent-Type: image/jpeg\r\n\r\n`;
      const response = await api()
        .post('/uploads')
        .set(auth)
        .set('Content-Type', 'multipart/form-data; boundary=B0undary')
        .send(Buffer.concat([Buffer.from(body, 'latin1'), photo, Buffer.from('\r\n--B0undary--\r\n')]));
      expect(response.status, JSON.stringify(response.body)).to.equal(202);
      expect(JSON.stringify(response.body)).not.to.contain(raw);
      await check(imageIdOf(photo), expected);
      rows.push({
        case: `file name: ${what}`,
        path: 'multipart',
        status: '202',
        code: '—',
        outcome: `asset filename ${JSON.stringify(expected.length > 24 ? `${expected.slice(0, 8)}…(${expected.length})` : expected)}`,
      });
    });
    it(`${what} via raw (?filename=): stored as ${JSON.stringify(expected.slice(0, 24))}`, async () => {
      const photo = await validPhoto(600 + index);
      const response = await api()
        .post(`/uploads?filename=${encodeURIComponent(raw)}`)
        .set(auth)
        .set('Content-Type', 'image/jpeg')
        .send(photo);
      expect(response.status, JSON.stringify(response.body)).to.equal(202);
      await check(imageIdOf(photo), expected);
      rows.push({
        case: `file name: ${what}`,
        path: 'raw',
        status: '202',
        code: '—',
        outcome: `asset filename ${JSON.stringify(expected.length > 24 ? `${expected.slice(0, 8)}…(${expected.length})` : expected)}`,
      });
    });
    if (/[\r\n]/.test(raw) || raw === '..') return; // Cloud Storage refuses CR/LF in object names; ".." is a folder here
    it(`${what} via incoming/: stored as ${JSON.stringify(expected.slice(0, 24))}`, async () => {
      const photo = await validPhoto(700 + index);
      await ingestObject(`incoming/names/${raw}`, photo);
      await check(imageIdOf(photo), expected);
      rows.push({
        case: `file name: ${what}`,
        path: 'incoming',
        status: '—',
        code: '—',
        outcome: `asset filename ${JSON.stringify(expected.length > 24 ? `${expected.slice(0, 8)}…(${expected.length})` : expected)}`,
      });
    });
  });

  it('CR/LF in an incoming/ object name never gets that far: Cloud Storage (and the local server) refuse the name', async () => {
    const error = await uploads()
      .file('incoming/evil\r\nX-Injected: 1.jpg')
      .save(await validPhoto(799), { resumable: false })
      .then(
        () => undefined,
        (e: unknown) => e as { code?: number },
      );
    expect(error?.code).to.equal(400);
    rows.push({
      case: 'file name: CR LF and a header',
      path: 'incoming',
      status: '400 from storage',
      code: '—',
      outcome: 'object never created',
    });
  });
});
