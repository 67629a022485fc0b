/** `DELETE /uploads/{id}`: removes an upload; the image's objects go with its last upload (docs/api.md). */
import { type ApiOptions, apiUrl, send } from './http.js';

/**
 * Deletes the caller's upload (and its image with the image's last upload). Resolves on 204 and
 * on 404: the server answers 404 for an upload already deleted, so a retry after a lost answer
 * is safe, and it answers the same for an id that is not the caller's, so there is nothing to
 * tell apart. Other failures are `ApiError`s.
 */
export async function deleteUpload(id: string, options: ApiOptions): Promise<void> {
  await send(options, apiUrl(options, `/${encodeURIComponent(id)}`), { method: 'DELETE' }, [204, 404]);
}
