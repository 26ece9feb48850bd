/** Status of an outbox event. */
export type EventStatus = "pending" | "processing" | "completed" | "failed";

/** Options of `Outbox.open`. Every one but `endpoint` has a default from the original design. */
export interface OutboxConfig {
  /** Where events are POSTed, e.g. "/api/v1/progress". Required. */
  endpoint: string;
  /** Bearer token: a string, or a (possibly async) function called with the userId before each
   *  upload ({ refresh: false }) and once more after a 401 ({ refresh: true }: fetch a new one).
   *  Omit for no Authorization header. Tokens are never logged or stored. */
  token?: string | ((userId: string, hint: { refresh: boolean }) => string | Promise<string>) | null;
  /** IndexedDB database name. Default "progress-outbox". */
  dbName?: string;
  /** Events claimed per pass, 1-1000. Default 10. */
  batchSize?: number;
  /** Pass interval in ms. Default 2000. */
  processingIntervalMs?: number;
  /** Uploads in flight at once, 1-64. Default 3. */
  maxConcurrent?: number;
  /** Attempts before an event gives up, 1-100. Default 5. */
  maxAttempts?: number;
  /** Wait after failed attempt n is backoffMs[n-1] (last value repeats). Default [1000, 5000, 30000, 120000, 600000]. */
  backoffMs?: number[];
  /** Cleanup interval in ms. Default 3600000 (hourly). */
  cleanupIntervalMs?: number;
  /** Completed events older than this are deleted by cleanup. Default 604800000 (7 days). */
  retentionMs?: number;
  /** An event processing for longer than this is stale (its tab died mid-upload). Default 300000. */
  staleAfterMs?: number;
  /** Per-request timeout in ms. Default 30000. */
  requestTimeoutMs?: number;
  /** Console verbosity. Default "warn". */
  log?: "debug" | "info" | "warn" | "off";
  /** Called when a newer version of the app in another tab upgrades the database: this
   *  connection has been closed so the upgrade can proceed; tell the user to reload. */
  onVersionChange?: () => void;
}

/** A measurement. Times are milliseconds since the epoch. */
export interface ProgressEntry {
  id: string;
  userId: string;
  type: "weight";
  quantity: number;
  unit: "kg";
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
  entityId: string;
  userId: string;
  status: EventStatus;
  metadata: { type: "weight"; quantity: number; date: number };
  isNewRecord: boolean;
  attemptCount: number;
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
}

/** Where a user's events stand. */
export interface OutboxStats {
  userId: string;
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
  lastError: string | null;
  lastErrorAt: number | null;
  oldestPendingAt: number | null;
  /** Median save-to-acknowledged time of recent completions, ms. */
  syncLatencyMs: number | null;
}

/** What one processing pass did. */
export interface PassReport {
  userId: string | null;
  /** The pass ran in the context that uploads for this user (another tab or worker), at this one's request. */
  delegated: boolean;
  offline: boolean;
  staleReset: number;
  promoted: number;
  claimed: number;
  completed: number;
  retrying: number;
  gaveUp: number;
  released: number;
}

export interface SaveWeightOptions {
  /** Default: the user given to start(). */
  userId?: string;
  /** A Date or ms since the epoch; not before 1900, at most 24 h ahead. Default: now. */
  date?: Date | number;
  /** Integer -1000..1000, higher uploads first. Default 0. */
  priority?: number;
}

export interface EventsQuery {
  status?: EventStatus;
  /** Default: the current user. */
  userId?: string;
  limit?: number;
}

/** Errors thrown or rejected by the library are TypeError, RangeError or Error with a code. */
export type OutboxErrorCode =
  | "INVALID_TYPE" | "OUT_OF_RANGE" | "NO_USER" | "UNKNOWN_EVENT" | "UNSUPPORTED"
  | "QUOTA_EXCEEDED" | "STORAGE" | "NEWER_SCHEMA" | "VERSION_CHANGED" | "CLOSED";

export class Outbox {
  private constructor();
  /** Opens (creating or upgrading) the outbox database. */
  static open(config: OutboxConfig): Promise<Outbox>;
  /** Login: process this user's events. Returns at once; idempotent; another id switches user. */
  start(userId: string): void;
  /** Logout: no further uploads start; no current user. */
  stop(): void;
  /** Saves entry + event in one IndexedDB transaction; resolves after commit. */
  saveWeight(kg: number, options?: SaveWeightOptions): Promise<ProgressEntry>;
  stats(userId?: string): Promise<OutboxStats>;
  /** Newest first. */
  events(query?: EventsQuery): Promise<OutboxEvent[]>;
  staleEvents(userId?: string): Promise<OutboxEvent[]>;
  /** Failed/stale events back to pending with 0 attempts; resolves with how many were reset. */
  resetForRetry(eventIds: string[]): Promise<number>;
  /** One processing pass now; resolves when it is done. */
  processNow(): Promise<PassReport>;
  /** Newest measurement first. */
  entries(userId?: string): Promise<ProgressEntry[]>;
  /** Calls back with the current stats, then whenever they change. Returns the unsubscribe function. */
  subscribe(callback: (stats: OutboxStats) => void): () => void;
  close(): void;
  /** The user given to start(), or null. */
  readonly currentUser: string | null;
  /** True while this context uploads for the current user: one per user among all tabs and
   *  workers of the origin using the same dbName (Web Locks, or a lease in IndexedDB). */
  readonly isLeader: boolean;
  free(): void;
}
