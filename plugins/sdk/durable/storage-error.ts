/**
 * Write failures of durable storage, typed so that callers can tell "the disk is full" (the request
 * is fine, retry when space returns: HTTP 507) and "the database cannot be reached" (retry once it is
 * back: HTTP 503) from a bug, and say which store failed.
 */

/** errno codes that mean "no room to write": the volume, the user's quota, or the file-size limit. */
const FULL_CODES = new Set(['ENOSPC', 'EDQUOT', 'EFBIG']);

/**
 * Codes that mean "the storage service is not there": network errnos, and PostgreSQL's SQLSTATEs for
 * a lost or refused connection (class 08), a server shutting down or starting (57P01-57P03) and too
 * many connections (53300).
 */
const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNLOST', '57P01', '57P02', '57P03', '53300']);

function unavailableCode(code: string): boolean {
  return UNAVAILABLE_CODES.has(code) || /^08[0-9A-Z]{3}$/.test(code);
}

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

  /** Whether the storage service could not be reached (the write may succeed once it is back). */
  get unavailable(): boolean {
    return unavailableCode(this.code);
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

/** True for a StorageWriteError saying the storage service (PostgreSQL) could not be reached. */
export function isStorageUnavailable(err: unknown): boolean {
  return err instanceof StorageWriteError && err.unavailable;
}

/** What a client is told when its request could not be stored because the database is unreachable. */
export function storageUnavailableMessage(err: unknown): string {
  return `storage unavailable: ${(err as Error).message}; the request was not recorded, retry once the database is reachable again`;
}

/**
 * An update lost a race: another process sharing the store (a second controller on the same
 * database) changed the same records first. Nothing of the update was written and the store now
 * shows the other writer's values: check again against them and retry, or give up.
 */
export class StorageConflictError extends Error {
  constructor(
    readonly store: string,
    /** The records both changed (`field` or `field/entry`). */
    readonly records: string[],
  ) {
    super(`store ${store} was changed by another writer at the same time (${records.slice(0, 5).join(', ')}${records.length > 5 ? ', ...' : ''}); nothing was written, retry`);
    this.name = 'StorageConflictError';
  }
}

/**
 * Runs a write again while it loses a race with another controller (StorageConflictError): the store
 * has taken the winner's rows when the conflict is thrown, so the next attempt works on them. Other
 * errors, and the last conflict, go to the caller.
 */
export async function retryOnConflict<R>(write: () => Promise<R>, attempts = 5): Promise<R> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await write();
    } catch (err) {
      if (!(err instanceof StorageConflictError) || attempt >= attempts) throw err;
    }
  }
}
