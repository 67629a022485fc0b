/**
 * local/firestore-emulator.ts against the real emulator: it starts and answers, stop() leaves no
 * process (wrapper or JVM) and no listening port, pause()/resume() take Firestore away and bring
 * it back on the same port with its documents, a data directory carries them to the next start,
 * and a missing gcloud, component or Java is an EmulatorUnavailableError that says how to install it.
 */
import { Firestore } from '@google-cloud/firestore';
import { expect } from 'chai';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isPortInUse } from '../../local/emulator-process.js';
import {
  EmulatorUnavailableError,
  latestExport,
  startFirestoreEmulator,
  type FirestoreEmulator,
} from '../../local/firestore-emulator.js';
import { testDatabase } from '../fixtures/pipeline.js';
import { freePort } from '../helpers.js';
import { firestoreEmulatorProcesses, removeDir, tempDir } from './helpers.js';

const PROJECT = 'emulator-test';
const DATABASE = 'image-pipeline';

/** The official client on an emulator, without touching this process's FIRESTORE_EMULATOR_HOST for good. */
function client(emulator: FirestoreEmulator, databaseId = DATABASE): Firestore {
  const previous = process.env.FIRESTORE_EMULATOR_HOST;
  process.env.FIRESTORE_EMULATOR_HOST = emulator.host;
  process.env.METADATA_SERVER_DETECTION ??= 'none';
  try {
    return new Firestore({ projectId: PROJECT, databaseId });
  } finally {
    if (previous === undefined) delete process.env.FIRESTORE_EMULATOR_HOST;
    else process.env.FIRESTORE_EMULATOR_HOST = previous;
  }
}

/** Runs `work` with PATH (and JAVA) replaced. */
async function withEnv<T>(changes: Record<string, string>, work: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(changes).map((k) => [k, process.env[k]]));
  Object.assign(process.env, changes);
  try {
    return await work();
  } finally {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  }
}

async function startError(port: number): Promise<Error> {
  try {
    const emulator = await startFirestoreEmulator({ port });
    await emulator.stop();
  } catch (error) {
    return error as Error;
  }
  throw new Error('the emulator started');
}

describe('Firestore emulator (local/firestore-emulator.ts)', function () {
  this.timeout(120_000);

  it('starts, keeps named databases apart, and stop() leaves no process and no listening port', async () => {
    const port = await freePort();
    const startedAt = Date.now();
    const emulator = await startFirestoreEmulator({ port });
    const startMs = Date.now() - startedAt;
    console.log(`      (answered after ${startMs} ms)`);
    try {
      expect(emulator.host).to.equal(`127.0.0.1:${port}`);
      expect(firestoreEmulatorProcesses(port)).to.not.be.empty;
      const db = client(emulator);
      const other = client(emulator, 'other-db');
      try {
        await db.doc('images/a').set({ status: 'ready' });
        expect((await db.doc('images/a').get()).data()).to.deep.equal({ status: 'ready' });
        expect((await other.doc('images/a').get()).exists, 'another database').to.equal(false);
      } finally {
        await Promise.all([db.terminate(), other.terminate()]);
      }
    } finally {
      await emulator.stop();
    }
    expect(firestoreEmulatorProcesses(port), 'wrapper and JVM gone once stop() resolves').to.deep.equal([]);
    expect(await isPortInUse(port)).to.equal(false);
    await emulator.stop();
  });

  it('pause() takes it away and resume() brings it back on the same port with its documents', async () => {
    const port = await freePort();
    const emulator = await startFirestoreEmulator({ port, projectId: PROJECT, database: DATABASE });
    try {
      const before = client(emulator);
      await before.doc('images/drill').set({ status: 'processing', attempts: 1 });
      await before.terminate();
      await emulator.pause();
      expect(emulator.paused).to.equal(true);
      expect(await isPortInUse(port), 'port while paused').to.equal(false);
      expect(firestoreEmulatorProcesses(port)).to.deep.equal([]);
      await emulator.resume();
      expect(emulator.paused).to.equal(false);
      const after = client(emulator);
      try {
        expect((await after.doc('images/drill').get()).data()).to.deep.equal({ status: 'processing', attempts: 1 });
      } finally {
        await after.terminate();
      }
    } finally {
      await emulator.stop();
    }
    expect(firestoreEmulatorProcesses(port)).to.deep.equal([]);
  });

  it('with a data directory: stop() exports, and the next start imports', async () => {
    const dataDir = tempDir('firestore-data');
    try {
      const first = await startFirestoreEmulator({
        port: await freePort(),
        dataDir,
        projectId: PROJECT,
        database: DATABASE,
      });
      try {
        const db = client(first);
        await db.doc('images/kept').set({ status: 'ready', widths: [320, 640] });
        await db.terminate();
      } finally {
        await first.stop();
      }
      expect(latestExport(dataDir), 'an export in the data directory').to.be.a('string');
      const second = await startFirestoreEmulator({
        port: await freePort(),
        dataDir,
        projectId: PROJECT,
        database: DATABASE,
      });
      const db = client(second);
      try {
        expect((await db.doc('images/kept').get()).data()).to.deep.equal({ status: 'ready', widths: [320, 640] });
      } finally {
        await db.terminate();
        await second.stop();
      }
    } finally {
      removeDir(dataDir);
    }
  });

  it('without gcloud on PATH: says how to install the emulator', async () => {
    const error = await withEnv({ PATH: '/nonexistent' }, async () => startError(await freePort()));
    expect(error).to.be.instanceOf(EmulatorUnavailableError);
    expect(error.message)
      .to.contain('gcloud CLI was not found')
      .and.to.contain('gcloud components install cloud-firestore-emulator')
      .and.to.contain('apt-get install google-cloud-cli-firestore-emulator')
      .and.to.contain('Java 11')
      .and.to.contain('FIRESTORE_EMULATOR_HOST');
  });

  it('with gcloud but not the component: says how to install it', async () => {
    const sdk = tempDir('fake-sdk');
    try {
      mkdirSync(join(sdk, 'bin'));
      mkdirSync(join(sdk, 'platform'));
      writeFileSync(join(sdk, 'bin', 'gcloud'), '#!/bin/sh\nexit 1\n');
      chmodSync(join(sdk, 'bin', 'gcloud'), 0o755);
      const error = await withEnv({ PATH: `${join(sdk, 'bin')}:/usr/bin:/bin` }, async () =>
        startError(await freePort()),
      );
      expect(error).to.be.instanceOf(EmulatorUnavailableError);
      expect(error.message)
        .to.contain(`not installed under ${sdk}`)
        .and.to.contain('gcloud components install cloud-firestore-emulator');
    } finally {
      removeDir(sdk);
    }
  });

  it('without Java: says it needs Java 11 or later', async () => {
    const port = await freePort();
    const error = await withEnv({ JAVA: '/nonexistent/java' }, () => startError(port));
    expect(error).to.be.instanceOf(EmulatorUnavailableError);
    expect(error.message).to.contain('exited with').and.to.contain('Java 11 or later');
    expect(firestoreEmulatorProcesses(port)).to.deep.equal([]);
  });

  it('gives test fixtures database ids Firestore accepts', () => {
    for (const suffix of [`${process.pid}-1-${Date.now().toString(36)}`, 'X', 'a'.repeat(80), 'Ab_c.d-']) {
      expect(testDatabase(suffix)).to.match(/^[a-z][a-z0-9-]{2,61}[a-z0-9]$/);
    }
  });
});
