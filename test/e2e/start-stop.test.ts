/**
 * Starting and stopping the local stack leaves nothing behind: after `stop()`, and after SIGINT
 * to `node dist/local/start.js` (what `npm start` runs), no port listens and no emulator process
 * (wrapper or JVM, Pub/Sub or Firestore) is left. A port in use stops start-up with a message
 * naming the variable to change, exit code 1, and nothing started. Firestore documents survive a
 * SIGTERM and a new `npm start` on the same data directory.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createServer, type Server } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Firestore } from '@google-cloud/firestore';
import { PubSub } from '@google-cloud/pubsub';
import { expect } from 'chai';
import { PortInUseError, type PortName } from '../../local/ports.js';
import { startLocalStack } from '../../local/stack.js';
import { pushPath, topology } from '../../shared/core/topology.js';
import { usePubsubEmulator } from '../fixtures/pubsub.js';
import { eventually, freePort } from '../helpers.js';
import { emulatorProcesses, firestoreEmulatorProcesses, listeningPorts, removeDir, tempDir } from './helpers.js';

const START_SCRIPT = fileURLToPath(new URL('../../local/start.js', import.meta.url));
const REPROCESS_SCRIPT = fileURLToPath(new URL('../../local/reprocess.js', import.meta.url));
const SMOKE_SCRIPT = fileURLToPath(new URL('../../local/smoke.js', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

async function freePorts(): Promise<Record<PortName, number>> {
  const ports = {} as Record<PortName, number>;
  for (const name of ['web', 'storage', 'pubsub', 'firestore', 'ingest', 'resize', 'cleanup', 'webhooks'] as const) {
    let port: number;
    do port = await freePort();
    while (Object.values(ports).includes(port));
    ports[name] = port;
  }
  return ports;
}

function portEnv(ports: Record<PortName, number>): Record<string, string> {
  return {
    PORT: String(ports.web),
    STORAGE_PORT: String(ports.storage),
    PUBSUB_PORT: String(ports.pubsub),
    FIRESTORE_PORT: String(ports.firestore),
    INGEST_PORT: String(ports.ingest),
    RESIZE_PORT: String(ports.resize),
    CLEANUP_PORT: String(ports.cleanup),
    WEBHOOKS_PORT: String(ports.webhooks),
  };
}

/** The environment of a spawned `npm start`: this one without the test run's shared emulators. */
function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra, NO_COLOR: '1' };
  delete env.PUBSUB_EMULATOR_HOST;
  delete env.FIRESTORE_EMULATOR_HOST;
  return env;
}

function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null)
      resolve({ code: child.exitCode, signal: child.signalCode });
    else child.once('exit', (code, signal) => resolve({ code, signal }));
  });
}

async function occupy(port: number): Promise<Server> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return server;
}

describe('local stack start and stop', function () {
  this.timeout(120_000);

  it('stop() leaves no listening port and no emulator process', async () => {
    const ports = await freePorts();
    const stack = await startLocalStack({ ports, cleanupIntervalSeconds: 1, log: () => undefined });
    let stopped = false;
    try {
      expect(stack.emulator).to.equal('started');
      expect(stack.ports).to.deep.equal(ports);
      expect(await listeningPorts(Object.values(ports))).to.have.members(Object.values(ports));
      expect(emulatorProcesses(ports.pubsub), 'emulator processes while running').to.not.be.empty;
      expect(stack.firestoreEmulator).to.equal('started');
      expect(stack.urls.firestore).to.equal(`127.0.0.1:${ports.firestore}`);
      expect(firestoreEmulatorProcesses(ports.firestore), 'Firestore emulator processes while running').to.not.be.empty;
      await stack.stop();
      stopped = true;
    } finally {
      if (!stopped) await stack.stop();
    }
    expect(await listeningPorts(Object.values(ports))).to.deep.equal([]);
    await eventually(
      async () => (emulatorProcesses(ports.pubsub).length === 0 ? true : undefined),
      10_000,
      'emulator processes gone',
    );
    expect(firestoreEmulatorProcesses(ports.firestore), 'stop() waits for the Firestore JVM').to.deep.equal([]);
    // A second stop is harmless.
    await stack.stop();
  });

  it('with a running emulator (PUBSUB_EMULATOR_HOST): pauses push subscriptions on stop and re-points them on the next start', async () => {
    const host = await usePubsubEmulator();
    const projectId = `e2e-restart-${process.pid}`;
    const options = { pubsubEmulatorHost: host, projectId, cleanupIntervalSeconds: 0, log: () => undefined };
    const admin = new PubSub({
      projectId,
      apiEndpoint: host,
      emulatorMode: true,
      clientOptions: { universeDomain: 'googleapis.com' },
    });
    const jobsPush = topology.subscriptions.jobsPush;
    const metadata = async () => (await admin.subscription(jobsPush.name).getMetadata())[0];
    try {
      const first = await startLocalStack({ ...options, ports: await freePorts() });
      expect(first.emulator).to.equal('external');
      const created = await metadata();
      expect(created.pushConfig?.pushEndpoint).to.equal(`${first.urls.resize}${pushPath(projectId, 'jobs')}`);
      // The settings Terraform gives the subscription, from the same topology.
      expect(created.ackDeadlineSeconds).to.equal(jobsPush.ackDeadlineSeconds);
      expect(created.deadLetterPolicy).to.deep.include({
        deadLetterTopic: `projects/${projectId}/topics/${topology.topics.jobsDeadLetter.name}`,
        maxDeliveryAttempts: jobsPush.maxDeliveryAttempts,
      });
      expect(Number(created.retryPolicy?.minimumBackoff?.seconds)).to.equal(jobsPush.minimumBackoffSeconds);
      expect(Number(created.retryPolicy?.maximumBackoff?.seconds)).to.equal(jobsPush.maximumBackoffSeconds);
      await first.stop();
      expect((await metadata()).pushConfig?.pushEndpoint || undefined, 'paused while stopped').to.equal(undefined);

      const second = await startLocalStack({ ...options, ports: await freePorts() });
      try {
        expect(second.urls.resize).to.not.equal(first.urls.resize);
        expect((await metadata()).pushConfig?.pushEndpoint).to.equal(
          `${second.urls.resize}${pushPath(projectId, 'jobs')}`,
        );
        const trigger = (await admin.subscription(second.subscriptions.cleanupTrigger).getMetadata())[0];
        expect(trigger.pushConfig?.pushEndpoint).to.equal(`${second.urls.cleanup}${pushPath(projectId, 'cleanup')}`);
      } finally {
        await second.stop();
      }
    } finally {
      await admin.close();
    }
  });

  it('refuses a port in use with a message naming its variable, and starts nothing', async () => {
    const ports = await freePorts();
    const busy = await occupy(ports.resize);
    try {
      let error: unknown;
      try {
        const stack = await startLocalStack({ ports, log: () => undefined });
        await stack.stop();
      } catch (caught) {
        error = caught;
      }
      expect(error).to.be.instanceOf(PortInUseError);
      expect((error as Error).message)
        .to.contain(`Port ${ports.resize}`)
        .and.to.contain('RESIZE_PORT=');
      const others = Object.entries(ports)
        .filter(([name]) => name !== 'resize')
        .map(([, port]) => port);
      expect(await listeningPorts(others)).to.deep.equal([]);
      expect(emulatorProcesses(ports.pubsub)).to.deep.equal([]);
      expect(firestoreEmulatorProcesses(ports.firestore)).to.deep.equal([]);
    } finally {
      busy.close();
    }
  });

  it('npm start: a port in use exits 1 with a message naming PORT', async () => {
    const ports = await freePorts();
    const busy = await occupy(ports.web);
    const dataDir = tempDir('start-busy');
    try {
      const child = spawn(process.execPath, [START_SCRIPT], {
        cwd: REPO_ROOT,
        env: childEnv({ ...portEnv(ports), LOCAL_DATA_DIR: dataDir }),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      child.stdout!.resume();
      const { code } = await exitOf(child);
      expect(code).to.equal(1);
      expect(stderr).to.contain(`Port ${ports.web}`).and.to.contain('already in use').and.to.contain(`PORT=`);
      expect(emulatorProcesses(ports.pubsub)).to.deep.equal([]);
    } finally {
      busy.close();
      removeDir(dataDir);
    }
  });

  it('npm start: prints the block, serves, and on SIGINT stops everything and exits 0', async () => {
    const ports = await freePorts();
    const dataDir = tempDir('start-sigint');
    const child = spawn(process.execPath, [START_SCRIPT], {
      cwd: REPO_ROOT,
      env: childEnv({ ...portEnv(ports), LOCAL_DATA_DIR: dataDir, CLEANUP_INTERVAL_SECONDS: '30' }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    try {
      await eventually(
        async () => {
          if (child.exitCode !== null)
            throw new Error(`npm start exited early (${child.exitCode}):\n${stdout}\n${stderr}`);
          return stdout.includes('Ctrl-C stops everything') ? true : undefined;
        },
        90_000,
        'the start-up block',
      );
      const web = `http://127.0.0.1:${ports.web}`;
      for (const expected of [
        `Web page        ${web}/`,
        `POST ${web}/uploads`,
        `http://127.0.0.1:${ports.storage}`,
        `127.0.0.1:${ports.pubsub}`,
        `Firestore       127.0.0.1:${ports.firestore}`,
        `FIRESTORE_EMULATOR_HOST=127.0.0.1:${ports.firestore}`,
        `ingest http://127.0.0.1:${ports.ingest}`,
        `resize http://127.0.0.1:${ports.resize}`,
        `cleanup http://127.0.0.1:${ports.cleanup}`,
        'Sign-in         ID tokens (UPLOAD_AUTH=jwt) from http://127.0.0.1:',
        'dev users alice, bob, carol',
        'export ID_TOKEN=ey',
        '/dev/token?user=bob',
        `curl -F file=@photo.jpg -H "Authorization: Bearer $ID_TOKEN" ${web}/uploads`,
        `curl --data-binary @photo.jpg -H 'Content-Type: image/jpeg' -H "Authorization: Bearer $ID_TOKEN"`,
        `CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE=http://127.0.0.1:${ports.storage}/ CLOUDSDK_AUTH_DISABLE_CREDENTIALS=true`,
        'gcloud storage cp photo.jpg gs://local-uploads/incoming/',
        'every 30 s here',
        'cron "*/15 * * * *"',
        dataDir,
      ]) {
        expect(stdout, `the block shows ${expected}`).to.contain(expected);
      }
      const health = await fetch(`${web}/healthz`);
      expect(health.status).to.equal(200);
      expect(emulatorProcesses(ports.pubsub)).to.not.be.empty;

      // The operator commands, with no settings but the data directory, run against this stack.
      const state = JSON.parse(readFileSync(join(dataDir, 'stack.json'), 'utf8'));
      expect(state.webUrl).to.equal(`${web}/`);
      // npm start's default: jwt against an issuer of its own, whose ID token the banner printed.
      expect(state.auth).to.include({ mode: 'jwt', audience: 'local-upload-api' });
      expect(state.auth.signInUrl).to.equal(`${state.auth.issuer}/dev/token`);
      const printed = /export ID_TOKEN=(\S+)/.exec(stdout)?.[1];
      const status = await fetch(`${web}/uploads/0123456789abcdef0123456789abcdef`, {
        headers: { Authorization: `Bearer ${printed}` },
      });
      expect(status.status, 'the printed token is accepted (the id is unknown)').to.equal(404);
      expect((await fetch(`${web}/uploads/0123456789abcdef0123456789abcdef`)).status).to.equal(401);
      const bare = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', LOCAL_DATA_DIR: dataDir };
      const run = promisify(execFile);
      const smoke = await run(process.execPath, [SMOKE_SCRIPT, '--timeout', '90'], { env: bare });
      expect(smoke.stdout).to.contain('smoke test passed');
      const reprocess = await run(process.execPath, [REPROCESS_SCRIPT, '--dry-run'], {
        env: { ...bare, WIDTHS: '320' },
      });
      const summary = JSON.parse(reprocess.stdout.slice(reprocess.stdout.indexOf('\n{') + 1));
      // The smoke test's image, made with the stack's recipe, is outdated for one with other widths.
      expect(summary).to.include({ dryRun: true, ready: 1, outdated: 1, dispatched: 0 });

      child.kill('SIGINT');
      const { code } = await exitOf(child);
      expect(code, stdout + stderr).to.equal(0);
      expect(stdout).to.contain('stopped.');
      expect(existsSync(join(dataDir, 'stack.json')), 'stack.json left behind').to.equal(false);
      expect(await listeningPorts([...Object.values(ports), Number(new URL(state.auth.issuer).port)])).to.deep.equal(
        [],
      );
      await eventually(
        async () => (emulatorProcesses(ports.pubsub).length === 0 ? true : undefined),
        10_000,
        'emulator processes gone',
      );
      expect(firestoreEmulatorProcesses(ports.firestore)).to.deep.equal([]);
    } finally {
      if (child.exitCode === null) {
        child.kill('SIGKILL');
        for (const pid of emulatorProcesses(ports.pubsub)) process.kill(pid, 'SIGKILL');
        for (const pid of firestoreEmulatorProcesses(ports.firestore)) process.kill(pid, 'SIGKILL');
      }
      removeDir(dataDir);
    }
  });

  it('npm start: a Firestore document written before SIGTERM is there after the next start on the same data', async () => {
    const dataDir = tempDir('start-firestore');
    const started: Array<{ child: ChildProcess; ports: Record<PortName, number> }> = [];
    /** Starts `npm start` and waits for its block. */
    const start = async () => {
      const ports = await freePorts();
      const child = spawn(process.execPath, [START_SCRIPT], {
        cwd: REPO_ROOT,
        env: childEnv({ ...portEnv(ports), LOCAL_DATA_DIR: dataDir, CLEANUP_INTERVAL_SECONDS: '0' }),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      started.push({ child, ports });
      let output = '';
      child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
      await eventually(
        async () => {
          if (child.exitCode !== null) throw new Error(`npm start exited early (${child.exitCode}):\n${output}`);
          return output.includes('Ctrl-C stops everything') ? true : undefined;
        },
        90_000,
        'the start-up block',
      );
      return { child, ports, output: () => output };
    };
    /** The official client, as the functions will use it, on that run's emulator. */
    const client = (port: number) => {
      const previous = process.env.FIRESTORE_EMULATOR_HOST;
      process.env.FIRESTORE_EMULATOR_HOST = `127.0.0.1:${port}`;
      try {
        return new Firestore({ projectId: 'local-project', databaseId: topology.firestore.database.name });
      } finally {
        if (previous === undefined) delete process.env.FIRESTORE_EMULATOR_HOST;
        else process.env.FIRESTORE_EMULATOR_HOST = previous;
      }
    };
    try {
      const first = await start();
      const writer = client(first.ports.firestore);
      const written = { name: 'kept.jpg', widths: [320, 640], at: new Date().toISOString() };
      await writer.doc('images/restart-check').set(written);
      await writer.terminate();
      first.child.kill('SIGTERM');
      const { code } = await exitOf(first.child);
      expect(code, first.output()).to.equal(0);
      expect(firestoreEmulatorProcesses(first.ports.firestore)).to.deep.equal([]);

      const second = await start();
      const reader = client(second.ports.firestore);
      try {
        const snapshot = await reader.doc('images/restart-check').get();
        expect(snapshot.exists, 'the document after the restart').to.equal(true);
        expect(snapshot.data()).to.deep.equal(written);
      } finally {
        await reader.terminate();
      }
      second.child.kill('SIGINT');
      expect((await exitOf(second.child)).code, second.output()).to.equal(0);
    } finally {
      for (const { child, ports } of started) {
        if (child.exitCode !== null || child.signalCode !== null) continue;
        child.kill('SIGKILL');
        for (const pid of emulatorProcesses(ports.pubsub)) process.kill(pid, 'SIGKILL');
        for (const pid of firestoreEmulatorProcesses(ports.firestore)) process.kill(pid, 'SIGKILL');
      }
      removeDir(dataDir);
    }
  });
});
