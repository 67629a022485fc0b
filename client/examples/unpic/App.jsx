import { Image } from '@unpic/react';
import { loaderImage, transformer } from '@gcp-image-pipeline/client/unpic';

/** `manifest`: the image's manifest.json, fetched by the page. */
export function App({ manifest }) {
  return (
    <>
      <Image {...loaderImage(manifest)} layout="fullWidth" transformer={transformer} alt="" />
      <Image
        {...loaderImage(manifest, { aspect: '16:9' })}
        width={800}
        height={450}
        layout="constrained"
        transformer={transformer}
        alt=""
      />
    </>
  );
}
