/**
 * The gcloud CLI against the storage server: `gcloud storage cp` up and down (a file under
 * gcloud's 8 MiB resumable threshold and one over it, byte-identical), `ls`, `cat` and `rm`.
 * gcloud is pointed at the server with
 *   CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE=http://127.0.0.1:PORT/
 *   CLOUDSDK_AUTH_DISABLE_CREDENTIALS=true
 * and a throwaway CLOUDSDK_CONFIG. Skipped, with the reason printed, only where gcloud is absent.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { expect } from 'chai';
import { Storage } from '@google-cloud/storage';
import { startStorageServer, type StorageServer } from '../../local/storage-server/index.js';
import { expectSameBytes } from '../helpers.js';

interface GcloudResult {
  stdout: Buffer;
  stderr: string;
}

const MiB = 1024 * 1024;
const md5 = (data: Buffer): string => createHash('md5').update(data).digest('base64');

/** True when an executable `gcloud` is on PATH (cheaper than running it: gcloud starts slowly). */
async function gcloudAvailable(): Promise<boolean> {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      await access(join(dir, 'gcloud'), constants.X_OK);
      return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}

describe('storage server: gcloud CLI', function () {
  this.timeout(180_000);
  let server: StorageServer;
  let work: string;
  const log: string[] = [];
  const small = randomBytes(1000);
  const big = randomBytes(9 * MiB + 123);

  function gcloud(...args: string[]): Promise<GcloudResult> {
    const env = {
      ...process.env,
      CLOUDSDK_CONFIG: join(work, 'gcloud-config'),
      CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE: `${server.url}/`,
      CLOUDSDK_AUTH_DISABLE_CREDENTIALS: 'true',
      CLOUDSDK_CORE_PROJECT: 'demo-project',
      CLOUDSDK_CORE_DISABLE_PROMPTS: '1',
      CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK: 'true',
      CLOUDSDK_CORE_DISABLE_USAGE_REPORTING: 'true',
    };
    return new Promise((resolve, reject) => {
      execFile(
        'gcloud',
        args,
        { env, cwd: work, encoding: 'buffer', maxBuffer: 64 * MiB, timeout: 120_000 },
        (error, stdout, stderr) => {
          if (error) reject(new Error(`gcloud ${args.join(' ')} failed: ${error.message}\n${stderr.toString()}`));
          else resolve({ stdout, stderr: stderr.toString() });
        },
      );
    });
  }

  before(async function () {
    if (!(await gcloudAvailable())) {
      console.log('    (skipped: the gcloud CLI is not installed; install the Google Cloud SDK to run these tests)');
      this.skip();
    }
    work = await mkdtemp(join(tmpdir(), 'storage-server-gcloud-'));
    await writeFile(join(work, 'small.bin'), small);
    await writeFile(join(work, 'big.bin'), big);
    server = await startStorageServer({ buckets: ['gcloud'], log: (line) => log.push(line) });
  });

  after(async () => {
    await server?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  afterEach(function () {
    // gcloud calls whatever it needs; anything this server lacks shows up here first.
    const unknown = log.filter((line) => line.includes('UNKNOWN ROUTE') || line.includes('storage-server: ERROR'));
    expect(unknown, unknown.join('\n')).to.deep.equal([]);
  });

  it('cp uploads a small file (multipart) and a 9 MiB file (resumable), byte-identical', async () => {
    await gcloud('storage', 'cp', 'small.bin', 'big.bin', 'gs://gcloud/up/');
    for (const [what, pattern] of [
      ['a multipart upload', /uploadType=multipart 200 /],
      ['a resumable upload', /upload_id=.* 200 /],
    ] as const) {
      expect(
        log.filter((line) => pattern.test(line)),
        `${what} answered 200, in:\n${log.join('\n')}`,
      ).to.not.deep.equal([]);
    }
    const bucket = new Storage({ apiEndpoint: server.url, projectId: 'demo-project' }).bucket('gcloud');
    for (const [name, data] of [
      ['up/small.bin', small],
      ['up/big.bin', big],
    ] as const) {
      const [metadata] = await bucket.file(name).getMetadata();
      expect(metadata.size).to.equal(String(data.length));
      expect(metadata.md5Hash).to.equal(md5(data));
    }
  });

  it('cp downloads both files byte-identical', async () => {
    await mkdir(join(work, 'down'));
    await gcloud('storage', 'cp', 'gs://gcloud/up/*', `${join(work, 'down')}/`);
    expectSameBytes(await readFile(join(work, 'down', 'small.bin')), small, 'small.bin as gcloud downloaded it');
    expectSameBytes(await readFile(join(work, 'down', 'big.bin')), big, 'big.bin as gcloud downloaded it');
  });

  it('ls -l lists the objects with their sizes', async () => {
    const lines = (await gcloud('storage', 'ls', '-l', 'gs://gcloud/up/')).stdout.toString().trim().split('\n');
    const listed = lines.flatMap((line) => {
      const match = /^\s*(\d+)\s+\S+\s+(gs:\/\/\S+)$/.exec(line);
      return match ? [[match[2], Number(match[1])]] : [];
    });
    expect(listed).to.deep.equal([
      ['gs://gcloud/up/big.bin', big.length],
      ['gs://gcloud/up/small.bin', small.length],
    ]);
    expect(lines.at(-1)).to.match(/^TOTAL: 2 objects/);
  });

  it('cat prints an object', async () => {
    const { stdout } = await gcloud('storage', 'cat', 'gs://gcloud/up/small.bin');
    expectSameBytes(stdout, small, 'what gcloud printed');
  });

  it('rm removes the objects', async () => {
    await gcloud('storage', 'rm', 'gs://gcloud/up/*');
    const [files] = await new Storage({ apiEndpoint: server.url, projectId: 'demo-project' })
      .bucket('gcloud')
      .getFiles();
    expect(files).to.deep.equal([]);
  });
});
