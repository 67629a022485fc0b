import { defineConfig } from 'astro/config';

// The pipeline's external image service: every srcset URL is a variant that exists.
export default defineConfig({
  image: { service: { entrypoint: '@gcp-image-pipeline/client/astro' } },
});
