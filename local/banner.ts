/**
 * The block `npm start` prints once the stack is up: where everything is, and commands to try.
 */
import { topology } from '../shared/core/topology.js';
import { PORT_VARIABLES } from './ports.js';
import type { DevToken } from './oidc-issuer.js';
import type { LocalStack } from './stack.js';

/** How requests authenticate, for the banner: a line about it, and lines to set the curl lines' variable. */
function signInLines(
  stack: LocalStack,
  alice: DevToken | undefined,
): { header: string; about: string[]; setup: string[] } {
  const { auth, config } = stack;
  if (auth.mode === 'none')
    return { header: '', about: ['  Sign-in         none (UPLOAD_AUTH=none): the upload API is open'], setup: [] };
  if (auth.mode === 'token')
    return {
      header: ' -H "Authorization: Bearer $UPLOAD_TOKEN"',
      about: ['  Sign-in         the shared token (UPLOAD_TOKEN): the web page has no token and gets 401'],
      setup: [],
    };
  const header = ' -H "Authorization: Bearer $ID_TOKEN"';
  const issuer = `${auth.issuer} (${auth.signInUrl ? 'started here' : 'JWT_ISSUER'}), audience ${config.JWT_AUDIENCE}`;
  const about = [`  Sign-in         ID tokens (UPLOAD_AUTH=jwt) from ${issuer}`];
  if (config.UPLOAD_TOKEN)
    about.push('                  and the shared token (UPLOAD_TOKEN) for trusted backends (X-Upload-Owner)');
  if (!auth.signInUrl || !alice)
    return { header, about, setup: ['    export ID_TOKEN=...   # an ID token from JWT_ISSUER'] };
  about.push(`                  dev users ${auth.users.join(', ')}: the web page signs in as any of them`);
  return {
    header,
    about,
    setup: [
      `    export ID_TOKEN=${alice.idToken}`,
      `    # alice, valid until ${alice.expiresAt}; bob (or carol):`,
      `    # export ID_TOKEN=$(curl -s '${auth.signInUrl}?user=bob' | node -pe 'JSON.parse(require("fs").readFileSync(0)).idToken')`,
    ],
  };
}

/**
 * The banner's text (no colour), so that tests can check it. `alice`: an ID token from the stack's
 * own issuer, printed for the curl lines.
 */
export function stackBanner(stack: LocalStack, alice?: DevToken): string {
  const { urls, ports, config } = stack;
  const storageOverride = `${urls.storage.replace(/\/+$/, '')}/`;
  const signIn = signInLines(stack, alice);
  const auth = signIn.header;
  const schedule = topology.schedule.cleanup;
  const pubsubEnv = `PUBSUB_EMULATOR_HOST=${urls.pubsub}`;
  const pull = (sub: string) =>
    `CLOUDSDK_API_ENDPOINT_OVERRIDES_PUBSUB=http://${urls.pubsub}/ CLOUDSDK_AUTH_DISABLE_CREDENTIALS=true \\\n      gcloud pubsub subscriptions pull ${sub} --project=${stack.projectId} --auto-ack --limit=10 --format='value(message.data)'`;
  const lines = [
    '',
    '  Image pipeline: local stack is up',
    '  ─────────────────────────────────',
    `  Web page        ${urls.web}`,
    `  Upload API      POST ${urls.api}   GET ${urls.api}/{id}   (${PORT_VARIABLES.web}=${ports.web})`,
    `  Variants        ${urls.images}/{id}/{width}w.{avif|webp|jpg}   (PUBLIC_BASE_URL)`,
    `  Storage server  ${urls.storage}   buckets ${stack.buckets.uploads}, ${stack.buckets.images}   (${PORT_VARIABLES.storage})`,
    `  Pub/Sub         ${urls.pubsub}   ${stack.emulator === 'started' ? `emulator started here (${PORT_VARIABLES.pubsub})` : 'emulator from PUBSUB_EMULATOR_HOST'}   project ${stack.projectId}`,
    `  Firestore       ${urls.firestore}   ${stack.firestoreEmulator === 'started' ? `emulator started here (${PORT_VARIABLES.firestore})` : 'emulator from FIRESTORE_EMULATOR_HOST'}   database ${stack.firestoreDatabase}${stack.firestoreEmulator === 'started' ? `   ${stack.dataDir ? 'kept in the data directory (firestore/)' : 'in memory'}` : ''}`,
    `  Functions       ingest ${urls.ingest}   resize ${urls.resize}   cleanup ${urls.cleanup}   webhooks ${urls.webhooks}`,
    `  Data            ${stack.dataDir ?? 'in memory (lost on exit)'}`,
    `  Cleanup         ${stack.cleanupIntervalSeconds > 0 ? `every ${stack.cleanupIntervalSeconds} s here (CLEANUP_INTERVAL_SECONDS)` : 'not scheduled here (CLEANUP_INTERVAL_SECONDS=0)'}; ` +
      `deployed: cron "${schedule.cron}" ${schedule.timeZone} (Cloud Scheduler)`,
    `  Variants made   widths ${config.WIDTHS.join(', ')} × ${config.FORMATS.join(', ')}   (WIDTHS, FORMATS)`,
    ...signIn.about,
    '',
    '  Try it: open the web page and drop a photo, or',
    ...signIn.setup,
    `    curl -F file=@photo.jpg${auth} ${urls.api}`,
    `    curl --data-binary @photo.jpg -H 'Content-Type: image/jpeg'${auth} '${urls.api}?filename=photo.jpg'`,
    `    CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE=${storageOverride} CLOUDSDK_AUTH_DISABLE_CREDENTIALS=true \\`,
    `      gcloud storage cp photo.jpg gs://${stack.buckets.uploads}/${topology.prefixes.incoming}`,
    `    curl${auth} ${urls.api}/{id}        # status, then the manifest`,
    '',
    `  Events (${stack.topics.events}) and dead-lettered jobs (${stack.topics.jobsDeadLetter}):`,
    `    ${pull(stack.subscriptions.eventsPull)}`,
    `    ${pull(stack.subscriptions.jobsDeadLetterPull)}`,
    `    or any Pub/Sub client with ${pubsubEnv}`,
    '',
    `  Firestore documents: any Firestore client with FIRESTORE_EMULATOR_HOST=${urls.firestore}, project ${stack.projectId},`,
    `    database ${stack.firestoreDatabase}; or over REST: curl http://${urls.firestore}/v1/projects/${stack.projectId}/databases/${stack.firestoreDatabase}/documents/images`,
    '',
    '  Ctrl-C stops everything.',
    '',
  ];
  return lines.join('\n');
}
