/**
 * The CLI (`npm run storage-server`) as another process runs it: it prints its URL, serves the
 * JSON API and the admin endpoint, wires `--notify`, persists to `--dir`, and stops cleanly (exit
 * code 0) on SIGINT and SIGTERM.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { Storage } from '@google-cloud/storage';

const CLI = fileURLToPath(new URL('../../local/storage-server/cli.js', import.meta.url));

interface RunningCli {
  child: ChildProcess;
  url: string;
  output: () => string;
}

/** Starts the CLI and resolves with the URL it prints. */
async function startCli(args: string[]): Promise<RunningCli> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`CLI printed no URL:\n${output}`)), 10_000);
    const check = (): void => {
      const match = /listening on (http:\/\/\S+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    };
    child.stdout!.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`CLI exited with ${code}:\n${output}`));
    });
  });
  return { child, url, output: () => output };
}

function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null)
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

describe('storage server: CLI', function () {
  this.timeout(30_000);
  let dir: string;
  let receiver: Server;
  let receiverUrl: string;
  const received: Array<{ headers: IncomingMessage['headers']; body: string }> = [];
  const running: ChildProcess[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'storage-server-cli-'));
    receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        received.push({ headers: req.headers, body });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/events`;
  });

  after(async () => {
    for (const child of running) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await new Promise<void>((resolve) => receiver.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`serves, notifies, persists, and exits 0 on ${signal}`, async () => {
      received.length = 0;
      const cli = await startCli([
        '--port',
        '0',
        '--dir',
        dir,
        '--bucket',
        'cli',
        '--notify',
        `cli=${receiverUrl}`,
        '--quiet',
      ]);
      running.push(cli.child);
      const bucket = new Storage({ apiEndpoint: cli.url, projectId: 'demo-project' }).bucket('cli');
      await bucket.file(`${signal}.txt`).save(signal);

      // The admin endpoint lets another process inject faults.
      const fault = await fetch(`${cli.url}/_admin/faults`, {
        method: 'POST',
        body: JSON.stringify({ method: 'GET', path: `${signal}.txt?alt=media`, status: 503 }),
      });
      expect(fault.status).to.equal(201);
      expect((await fetch(`${cli.url}/storage/v1/b/cli/o/${signal}.txt?alt=media`)).status).to.equal(503);
      expect(await (await fetch(`${cli.url}/storage/v1/b/cli/o/${signal}.txt?alt=media`)).text()).to.equal(signal);

      const deadline = Date.now() + 5_000;
      while (received.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(received).to.have.length(1);
      expect(received[0]!.headers['ce-type']).to.equal('google.cloud.storage.object.v1.finalized');
      expect(received[0]!.headers['ce-subject']).to.equal(`objects/${signal}.txt`);
      expect(JSON.parse(received[0]!.body)).to.include({ bucket: 'cli', name: `${signal}.txt` });

      cli.child.kill(signal);
      expect(await exitOf(cli.child)).to.deep.equal({ code: 0, signal: null });
      expect(cli.output()).to.match(new RegExp(`Received ${signal}; stopping`));
    });
  }

  it('objects written before a stop are there after a restart on the same --dir', async () => {
    const cli = await startCli(['--port', '0', '--dir', dir]);
    running.push(cli.child);
    const [files] = await new Storage({ apiEndpoint: cli.url, projectId: 'demo-project' }).bucket('cli').getFiles();
    expect(files.map((f) => f.name)).to.deep.equal(['SIGINT.txt', 'SIGTERM.txt']);
    cli.child.kill('SIGTERM');
    expect((await exitOf(cli.child)).code).to.equal(0);
  });

  it('rejects bad arguments with exit code 2 and the usage', async () => {
    const child = spawn(process.execPath, [CLI, '--notify', 'no-equals-sign'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    expect((await exitOf(child)).code).to.equal(2);
    expect(stderr)
      .to.match(/--notify takes BUCKET=URL/)
      .and.match(/Usage:/);
  });
});
