// The outbox settings the demo's pages and its service worker share, so that whichever of them
// uploads does so the same way: the endpoints, and what the URL switches change (?fast=1 shortens
// every interval, retries in seconds instead of minutes; ?batch=1 uploads through the batch
// endpoint; ?db= names the database).
export const ENDPOINT = "/api/v1/progress";
export const BATCH_ENDPOINT = "/api/v1/progress/batch";

/** The `Outbox.open` options for these switches (the token function and callbacks are the caller's). */
export function outboxSettings({ fast = false, batch = false, db = null } = {}) {
  return {
    endpoint: ENDPOINT,
    ...(fast ? { processingIntervalMs: 300, backoffMs: [300, 600, 1000, 2000, 3000], requestTimeoutMs: 4000, staleAfterMs: 5000 } : {}),
    ...(batch ? { batchEndpoint: BATCH_ENDPOINT } : {}),
    ...(db ? { dbName: db } : {}),
  };
}
