/** `DELETE /uploads/{id}`: removes the image, its variants and manifest (docs/api.md, "Deleting an image"). */
import { type ApiOptions, apiUrl, send } from './http.js';

/**
 * Deletes an upload; resolves on 204, which the server also answers for one already deleted, so a
 * retry after a lost answer is safe. An id with no trace is an `ApiError` 404 `not_found`.
 */
export async function deleteUpload(id: string, options: ApiOptions): Promise<void> {
  await send(options, apiUrl(options, `/${encodeURIComponent(id)}`), { method: 'DELETE' }, [204]);
}
