/** Status of an outbox event. */
export type EventStatus = "pending" | "processing" | "completed" | "failed";

/** What an event does to the server's copy of its entry. */
export type Operation = "create" | "update" | "delete";

/** The metrics and their units (CONTRACT §1):
 *  weight kg (0 < x <= 635), bodyFat % (1..75), height cm (30..300),
 *  steps count (integer 0..200000), heartRate bpm (integer 20..300), mood score (integer 1..10). */
export type Metric = "weight" | "bodyFat" | "height" | "steps" | "heartRate" | "mood";
/** The unit of each metric. */
export type Unit = "kg" | "%" | "cm" | "count" | "bpm" | "score";

/** `stats().health`: offline (the platform reports no network), failing (events gave up, or
 *  `failingAfter` answers in a row failed), stalled (online and started, yet the oldest event not
 *  yet delivered, pending, processing or retrying, is older than `stalledAfterMs`), else ok. */
export type Health = "ok" | "offline" | "failing" | "stalled";

/** Options of `Outbox.open`. Every one but `endpoint` has a default from the original design. */
export interface OutboxConfig {
  /** Where events are POSTed (updates go to `{endpoint}/{backendId}` with PUT, deletes with DELETE). Required. */
  endpoint: string;
  /** Bearer token: a string, or a (possibly async) function called with the userId of the events
   *  being uploaded before each upload ({ refresh: false }) and once more after a 401
   *  ({ refresh: true }: fetch a new one). It is given `requestTimeoutMs` to answer.
   *  Omit for no Authorization header. Tokens are never logged or stored. */
  token?: string | ((userId: string, hint: { refresh: boolean }) => string | Promise<string>) | null;
  /** IndexedDB database name. Default "progress-outbox". */
  dbName?: string;
  /** Events claimed per pass step, 1-1000. Default 10. With `batchEndpoint` set it has no
   *  effect: each claim is one batch of the adaptive size (up to `maxBatchEvents`). */
  batchSize?: number;
  /** Pass interval in ms. Default 2000. */
  processingIntervalMs?: number;
  /** Requests in flight at once, 1-64. Default 3 (1 on saveData or 2g-class links). */
  maxConcurrent?: number;
  /** Failed server answers before an event gives up, 1-100. Default 5. No answer (offline,
   *  network error, timeout, token unavailable) never counts. */
  maxAttempts?: number;
  /** Wait after failed try n is backoffMs[n-1] (last value repeats). Default [1000, 5000, 30000, 120000, 600000]. */
  backoffMs?: number[];
  /** Cleanup interval in ms. Default 3600000 (hourly). */
  cleanupIntervalMs?: number;
  /** Completed events older than this are deleted by cleanup. Default 604800000 (7 days). */
  retentionMs?: number;
  /** A claim whose context is gone (closed, crashed) is stale at once; one whose context lives
   *  never is (its request may still be in flight). Where there are no Web Locks, a claim unchanged
   *  for this long is stale, once this context has also watched it unchanged for
   *  2 × `requestTimeoutMs` + 1 s. Default 300000. */
  staleAfterMs?: number;
  /** Per-request (and per token call) timeout in ms. Default 30000. */
  requestTimeoutMs?: number;
  /** Console verbosity. Default "warn". */
  log?: "debug" | "info" | "warn" | "off";
  /** Ask `navigator.storage.persist()` at open. Default true. */
  persist?: boolean;
  /** Where batches of events are POSTed (CONTRACT §2b). Default: none (one request per event). */
  batchEndpoint?: string | null;
  /** Most events in one batch request, 1-1000. Default 100. */
  maxBatchEvents?: number;
  /** Health turns "failing" after this many failed answers in a row, 1-1000. Default 5. */
  failingAfter?: number;
  /** Health turns "stalled" when the oldest event not yet delivered (pending, processing or
   *  retrying; not what `oldestPendingAt` shows) is older than this (ms). Default 600000. */
  stalledAfterMs?: number;
  /** Called when a newer version of the app in another tab upgrades the database: this
   *  connection has been closed so the upgrade can proceed; tell the user to reload. */
  onVersionChange?: () => void;
}

/** A measurement. Times are milliseconds since the epoch. */
export interface ProgressEntry {
  id: string;
  userId: string;
  type: Metric;
  quantity: number;
  unit: Unit;
  date: number;
  /** The server's id, null until the server acknowledged the entry. */
  backendId: string | null;
  createdAt: number;
  updatedAt: number;
}

/** One unit of sync work. Times are milliseconds since the epoch. */
export interface OutboxEvent {
  /** Also the Idempotency-Key of every upload of this event. */
  id: string;
  eventType: "progressEntry";
  operation: Operation;
  entityId: string;
  userId: string;
  status: EventStatus;
  /** What is sent (for a create folded with later edits: the latest values). */
  metadata: { type: Metric; quantity: number; unit: Unit; date: number };
  /** The entry had no backendId when the event was written. */
  isNewRecord: boolean;
  /** Failed server answers so far (what maxAttempts counts). */
  attemptCount: number;
  /** Claims that went out (a request sent, or about to be when the page closed), answered or
   *  not; a claim handed back unsent, or stopped by its token, is taken off. */
  requestCount: number;
  maxAttempts: number;
  priority: number;
  createdAt: number;
  lastAttemptAt: number | null;
  /** When a failed event is retried; null when not scheduled. */
  nextAttemptAt: number | null;
  completedAt: number | null;
  errorMessage: string | null;
  /** Failed with no automatic retry left; only resetForRetry brings it back. */
  gaveUp: boolean;
  /** Always false here; see `QuarantinedRecord`. */
  quarantined: false;
}

/** A record that could not be read (written by another version of the app, or damaged), kept
 *  aside: `events()` lists it with the failed ones. Apart from the fields below it holds whatever
 *  fields the stored record has, of any type (`metadata` may be missing): check `quarantined`
 *  before reading an event's fields. An upgrade of the app that can read it brings it back. */
export interface QuarantinedRecord {
  /** The record's key as text: what resetForRetry takes (it skips such records). */
  id: string;
  status: "failed";
  gaveUp: true;
  quarantined: true;
  /** "unreadable record, kept aside (not deleted): " and why. */
  errorMessage: string;
  [field: string]: unknown;
}

/** Where a user's events stand. */
export interface OutboxStats {
  userId: string;
  /** Waiting to upload (including events waiting behind an earlier one of their entry). */
  pending: number;
  processing: number;
  /** Events with status "failed": retrying ones plus those that gave up. */
  failed: number;
  completed: number;
  /** Failed with no automatic retry left (a subset of failed). */
  gaveUp: number;
  /** Failed and scheduled to retry (failed - gaveUp). */
  retrying: number;
  lastSyncAt: number | null;
  /** The last failure: an upload's as stored, or a pass's that failed in this context (storage
   *  that refuses to record a pass, when full, refuses the stored record of the last error too),
   *  whichever is newer. */
  lastError: string | null;
  lastErrorAt: number | null;
  oldestPendingAt: number | null;
  /** Median save-to-acknowledged time of recent completions, ms. */
  syncLatencyMs: number | null;
  /** Records that cannot be read: kept, listed by events(), never blocking others. */
  quarantined: number;
  /** Failed server answers since the last success. */
  failedInARow: number;
  health: Health;
  /** navigator.storage.persisted(), or null where the platform cannot tell. */
  persisted: boolean | null;
  /** navigator.storage.estimate(), or null where the platform cannot tell. */
  storage: { usage: number; quota: number } | null;
  /** Events per batch request right now (with batchEndpoint), else null. */
  batchEvents: number | null;
}

/** What one processing pass did. */
export interface PassReport {
  userId: string | null;
  /** The pass ran in the context that uploads for this user (another tab or worker), at this one's request. */
  delegated: boolean;
  /** The platform reported offline: nothing was sent. */
  offline: boolean;
  /** Stale claims (an upload interrupted by a crash or a closed tab) put back to pending. */
  staleReset: number;
  /** Failed events whose retry time had come, made due again. */
  promoted: number;
  /** Events this pass took to upload. */
  claimed: number;
  /** Acknowledged by the server. */
  completed: number;
  /** Failed, retried later on the backoff schedule. */
  retrying: number;
  /** Failed for good (a refusing 4xx, or maxAttempts failed answers). */
  gaveUp: number;
  /** Claimed but handed back unsent (no answer from the server, lost lead, stop or close). */
  released: number;
  /** Requests sent (one per event, or one per batch). */
  requests: number;
  /** false: processNow() stopped waiting at 9 s (every call's bound: a stalled server, a token
   *  function that does not answer, storage stuck in another tab) while the pass goes on in the
   *  background, the counts being what it had done so far; or the pass stopped early (a later
   *  claim failed); or no pass could run (no context took the lead within about a second). */
  finished: boolean;
}

export interface SaveOptions {
  /** Default: the user given to start(). */
  userId?: string;
  /** A Date or ms since the epoch; not before 1900, at most 24 h ahead. Default: now. */
  date?: Date | number;
  /** Integer -1000..1000, higher uploads first. Default 0. */
  priority?: number;
}

/** @deprecated use SaveOptions */
export type SaveWeightOptions = SaveOptions;

/** The new values of `update(entryId, changes)`: `quantity` (within the entry's metric's rule),
 *  `date` (a Date or ms since the epoch; not before 1900, at most 24 h ahead), or both; at least
 *  one (`update(id, {})` is a RangeError). */
export type EntryChanges =
  | { quantity: number; date?: Date | number }
  | { quantity?: number; date: Date | number };

export interface EventsQuery {
  status?: EventStatus;
  /** Default: the current user. */
  userId?: string;
  limit?: number;
}

export interface EntriesQuery {
  /** Default: the current user. */
  userId?: string;
  metric?: Metric;
  /** Measured at or after (inclusive). */
  from?: Date | number;
  /** Measured at or before (inclusive). */
  to?: Date | number;
  limit?: number;
}

/** Errors thrown or rejected by the library are TypeError, RangeError or Error with a code. */
export type OutboxErrorCode =
  | "INVALID_TYPE" | "OUT_OF_RANGE" | "NO_USER" | "UNKNOWN_EVENT" | "UNKNOWN_ENTRY" | "UNSUPPORTED"
  | "QUOTA_EXCEEDED" | "STORAGE" | "NEWER_SCHEMA" | "BLOCKED" | "TIMEOUT" | "VERSION_CHANGED" | "CLOSED";

/** An error of this library: a TypeError (wrong kind of argument), RangeError (refused value)
 *  or Error, with a stable code. */
export interface OutboxError extends Error {
  code: OutboxErrorCode;
}

/** True for an error this library threw or rejected with. */
export function isOutboxError(e: unknown): e is OutboxError;

export class Outbox {
  private constructor();
  /** Opens (creating or upgrading) the outbox database. From the package entry it also loads
   *  the wasm on first use. */
  static open(config: OutboxConfig): Promise<Outbox>;
  /** Login: process this user's events. Returns at once; idempotent; another id switches user.
   *  A started outbox uploads until stop() or close(), even with no reference kept to it. */
  start(userId: string): void;
  /** Logout: no further uploads start; no current user. */
  stop(): void;
  /** Saves a weight in kg: `save("weight", kg, options)`. Resolves after the entry and its
   *  event are committed in one IndexedDB transaction. */
  saveWeight(kg: number, options?: SaveOptions): Promise<ProgressEntry>;
  /** Saves a measurement of any metric (entry + event in one transaction). */
  save(metric: Metric, quantity: number, options?: SaveOptions): Promise<ProgressEntry>;
  /** Changes an entry (of any user on this device); syncs as an update, or folds into its
   *  not-yet-sent create. Rejects with code UNKNOWN_ENTRY for an unknown or deleted entry. */
  update(entryId: string, changes: EntryChanges): Promise<ProgressEntry>;
  /** Deletes an entry: hidden from entries() at once, DELETE sent once its create is
   *  acknowledged (nothing is sent if nothing of it ever was). UNKNOWN_ENTRY if unknown. */
  delete(entryId: string): Promise<void>;
  stats(userId?: string): Promise<OutboxStats>;
  /** Newest first; records that cannot be read are listed with the failed ones
   *  (`quarantined: true`, see `QuarantinedRecord`). */
  events(query?: EventsQuery): Promise<(OutboxEvent | QuarantinedRecord)[]>;
  staleEvents(userId?: string): Promise<OutboxEvent[]>;
  /** Failed/stale events back to pending with 0 attempts; resolves with how many were reset.
   *  Records set aside as unreadable (quarantined) are skipped; an unknown id rejects with
   *  UNKNOWN_EVENT and resets nothing. */
  resetForRetry(eventIds: string[]): Promise<number>;
  /** One processing pass now; resolves when it is done, or after 9 s with `finished: false`
   *  while the pass goes on in the background. */
  processNow(): Promise<PassReport>;
  /** Newest measurement first (deleted entries are not listed). */
  entries(query?: string | EntriesQuery): Promise<ProgressEntry[]>;
  /** Calls back with the current user's stats (nothing before `start()`), then whenever they
   *  (or the health) change. Returns the unsubscribe function: once it has returned, the callback is never called again (not even later in a round of calls in progress). Throws `CLOSED` after `close()`. */
  subscribe(callback: (stats: OutboxStats) => void): () => void;
  /** Stops processing and closes the database; uploads in flight finish and are recorded, unsent
   *  claims are handed back. Later calls reject with code CLOSED. */
  close(): void;
  /** The user given to start(), or null. */
  readonly currentUser: string | null;
  /** True while this context uploads for the current user: one per user among all tabs and
   *  workers of the origin using the same dbName (Web Locks, or a lease in IndexedDB). */
  readonly isLeader: boolean;
  /** Closes the outbox (as `close()` does), then releases its wasm object: later calls throw
   *  (or reject) with code CLOSED. `close()` alone is enough; this also frees the memory. */
  free(): void;
}
