'use client';
// next/image calls the loader in the browser too, so the loader file is a client module.
import loader from '@gcp-image-pipeline/client/next';

export default function imageLoader(props) {
  return loader(props);
}
