import Image from 'next/image';
import { loaderImage } from '@gcp-image-pipeline/client/next';

/** Reads the manifest on the server; the loader needs only the `src` that loaderImage builds from it. */
export default async function Page() {
  const manifest = await (await fetch(process.env.MANIFEST_URL, { cache: 'no-store' })).json();
  return (
    <main>
      <Image {...loaderImage(manifest)} alt="" sizes="100vw" style={{ width: '100%', height: 'auto' }} priority />
      <Image {...loaderImage(manifest, { aspect: '16:9' })} alt="" sizes="(max-width: 768px) 50vw, 33vw" />
    </main>
  );
}
