/**
 * The small load run of `npm test`: `npm run load`'s code (bench/load.ts) with 20 uploads at
 * concurrency 5 against a local stack started for it (resize in its own functions-framework
 * process, as in the full run), on the test run's Pub/Sub emulator. Every image must end ready,
 * with nothing lost and nothing doubled.
 */
import { expect } from 'chai';
import { formatReport, runLoad } from '../../bench/load.js';
import { useFirestoreEmulator } from '../fixtures/firestore.js';
import { usePubsubEmulator } from '../fixtures/pubsub.js';

describe('load: 20 uploads at concurrency 5 through the local stack (npm run load, small)', function () {
  this.timeout(150_000);

  it('ends with 20 images ready, 0 lost, 0 doubled, and reports its figures', async () => {
    const emulator = await usePubsubEmulator();
    const report = await runLoad({
      uploads: 20,
      concurrency: 5,
      width: 400,
      height: 300,
      widths: [160, 320],
      formats: ['webp', 'jpeg'],
      resize: 'process',
      timeoutSeconds: 90,
      pubsubEmulatorHost: emulator,
      firestoreEmulatorHost: await useFirestoreEmulator(),
      progress: () => undefined,
    });
    const table = formatReport(report);
    console.log(`\n${table.replace(/^/gm, '      ')}\n`);
    expect(report.problems, report.problems.join('\n')).to.deep.equal([]);
    expect(report.lost).to.equal(0);
    expect(report.doubled).to.equal(0);
    expect(report.uploads.accepted).to.equal(20);
    expect(report.processing).to.include({ ready: 20, failed: 0 });
    expect(report.variantsPerImage).to.equal(4);
    expect(report.checks).to.deep.equal({ events: true, objects: true });
    expect(report.deadLetters).to.equal(0);
    expect(report.peakRssBytes, 'peak RSS of the resize process').to.be.a('number').and.greaterThan(0);
    expect(table)
      .to.match(/\| \*\*lost\*\* \| \*\*0\*\* \|/)
      .and.match(/upload → ready p50 \/ p95 \/ p99/);
  });
});
