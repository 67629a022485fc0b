/**
 * `@gcp-image-pipeline/client`: the upload API from a browser or Node 20+, with `fetch` only.
 * Each operation takes its {@link ApiOptions}; {@link createClient} binds them once.
 */
import { deleteUpload } from './delete.js';
import type { ApiOptions } from './http.js';
import { allUploads, type ListOptions, listUploads } from './list.js';
import { getStatus, type WaitOptions, waitUntilReady, waitUntilReadyStatus } from './status.js';
import { type UploadOptions, type UploadSource, upload } from './upload.js';

export { sniffContentType } from './content-type.js';
export { deleteUpload } from './delete.js';
export { ApiError, type ErrorBody, parseRetryAfter } from './errors.js';
export type { ApiOptions } from './http.js';
export { allUploads, type ListOptions, listUploads, type UploadListItem, type UploadPage } from './list.js';
export { type PictureImg, type PictureOptions, type PictureSource, pictureSources } from './picture.js';
export {
  type LoaderImage,
  type LoaderImageOptions,
  loaderImage,
  type ParsedLoaderSrc,
  parseLoaderSrc,
  snapWidth,
  variantUrlFor,
} from './loaders/variants.js';
export { type HasPlaceholder, placeholderDataURL } from './placeholder.js';
export { type BackoffOptions, backoffDelay } from './backoff.js';
export { getStatus, pollUntilReady, type WaitOptions, waitUntilReady, waitUntilReadyStatus } from './status.js';
export type { TransferProgress } from './transfer.js';
export type * from './types.js';
export {
  DEFAULT_SIGNED_URL_ABOVE,
  type UploadOptions,
  type UploadResult,
  type UploadSource,
  upload,
} from './upload.js';

/** Per-call options, without what {@link createClient} already bound. */
type Rest<T> = Omit<T, keyof ApiOptions> & Partial<ApiOptions>;

/**
 * The operations with `baseUrl`, `idToken` and `fetch` bound; each call may still override them.
 *
 * ```ts
 * const api = createClient({ baseUrl: 'https://upload-abc.a.run.app', idToken });
 * const { id } = await api.upload(file, { onProgress: ({ loaded, total }) => bar.value = loaded / total });
 * const manifest = await api.waitUntilReady(id);
 * ```
 */
export function createClient(defaults: ApiOptions) {
  const merge = <T>(options: T | undefined) => ({ ...defaults, ...options });
  return {
    upload: (source: UploadSource, options?: Rest<UploadOptions>) => upload(source, merge(options)),
    getStatus: (id: string, options?: Partial<ApiOptions>) => getStatus(id, merge(options)),
    waitUntilReady: (id: string, options?: Rest<WaitOptions>) => waitUntilReady(id, merge(options)),
    waitUntilReadyStatus: (id: string, options?: Rest<WaitOptions>) => waitUntilReadyStatus(id, merge(options)),
    listUploads: (options?: Rest<ListOptions>) => listUploads(merge(options)),
    allUploads: (options?: Rest<Omit<ListOptions, 'cursor'>>) => allUploads(merge(options)),
    deleteUpload: (id: string, options?: Partial<ApiOptions>) => deleteUpload(id, merge(options)),
  };
}
