/** `GET /uploads?limit=&cursor=`: the caller's uploads, a page at a time (servers with per-upload ids). */
import { type ApiOptions, apiUrl, json, send } from './http.js';

/** One upload in a listing. */
export interface UploadListItem {
  readonly id: string;
  readonly imageId: string;
  readonly status: string;
  readonly filename?: string;
  readonly createdAt: string;
}

/** One page; `nextCursor` is absent on the last. */
export interface UploadPage {
  readonly items: readonly UploadListItem[];
  readonly nextCursor?: string;
}

/** Options of {@link listUploads}. */
export interface ListOptions extends ApiOptions {
  /** Items per page (the server caps it). */
  readonly limit?: number | undefined;
  /** A previous page's `nextCursor`. */
  readonly cursor?: string | undefined;
}

/** One page of the caller's uploads, newest first as the server orders them. */
export async function listUploads(options: ListOptions): Promise<UploadPage> {
  const query = new URLSearchParams();
  if (options.limit !== undefined) query.set('limit', String(options.limit));
  if (options.cursor !== undefined) query.set('cursor', options.cursor);
  const search = query.toString() ? `?${query}` : '';
  return json<UploadPage>(await send(options, apiUrl(options, search), { method: 'GET' }, [200]));
}

/** Every upload, page after page (`for await (const item of allUploads(options))`). */
export async function* allUploads(options: Omit<ListOptions, 'cursor'>): AsyncGenerator<UploadListItem> {
  let cursor: string | undefined;
  do {
    const page = await listUploads({ ...options, cursor });
    yield* page.items;
    cursor = page.nextCursor;
  } while (cursor);
}
