/** Every next/image goes through the pipeline's loader: it snaps each width to a variant that exists. */
export default {
  images: { loader: 'custom', loaderFile: './image-loader.js' },
};
