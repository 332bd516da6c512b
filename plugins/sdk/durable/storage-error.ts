/**
 * Write failures of durable storage, typed so that callers can tell "the disk is full" (the request
 * is fine, retry when space returns: HTTP 507) from a bug, and say which store failed.
 */

/** errno codes that mean "no room to write": the volume, the user's quota, or the file-size limit. */
const FULL_CODES = new Set(['ENOSPC', 'EDQUOT', 'EFBIG']);

export class StorageWriteError extends Error {
  /** The errno code (ENOSPC, EDQUOT, EFBIG, EIO, ...). */
  readonly code: string;

  constructor(
    /** Which log or store failed, e.g. "events". */
    readonly store: string,
    cause: unknown,
  ) {
    const code = errnoOf(cause) ?? 'EIO';
    super(`could not write ${store}: ${FULL_CODES.has(code) ? `${code} (${describeFull(code)})` : (cause as Error)?.message ?? String(cause)}`, { cause });
    this.name = 'StorageWriteError';
    this.code = code;
  }

  /** Whether the failure is lack of space (the write may succeed once space returns). */
  get full(): boolean {
    return FULL_CODES.has(this.code);
  }
}

function describeFull(code: string): string {
  if (code === 'EDQUOT') return 'disk quota exceeded';
  if (code === 'EFBIG') return 'file size limit reached';
  return 'no space left on device';
}

function errnoOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' ? code : undefined;
}

/** True for a StorageWriteError about space, or any raw fs error with a no-space code (e.g. from a store). */
export function isStorageFull(err: unknown): boolean {
  if (err instanceof StorageWriteError) return err.full;
  const code = errnoOf(err);
  return code !== undefined && FULL_CODES.has(code);
}

/** What a client is told when its request could not be stored for lack of space. */
export function storageFullMessage(err: unknown): string {
  const what = err instanceof StorageWriteError ? err.message : `could not write to disk: ${errnoOf(err)} (${describeFull(errnoOf(err) ?? 'ENOSPC')})`;
  return `storage full: ${what}; the request was not recorded, retry once space is freed`;
}
