// Type-checks a typical use of the package against its published declarations
// (`tsc -p tests/types`, part of `npm test`): everything here must compile under --strict.
import init, { Outbox, type OutboxConfig, type OutboxEvent, type QuarantinedRecord, type OutboxStats, type ProgressEntry, type PassReport, type Health, type Metric } from "progress-outbox";

declare const session: { accessToken: string; refresh(): Promise<string> };

export async function withoutInit(): Promise<Outbox> {
  // Outbox.open loads the wasm on first use: no init() call needed.
  return Outbox.open({ endpoint: "/api/v1/progress" });
}

export async function withInit(wasmUrl: string, bytes: ArrayBuffer): Promise<void> {
  await init(); // optional, idempotent
  await init({ module_or_path: wasmUrl }); // the wasm served from elsewhere
  await init({ module_or_path: new URL("/assets/progress_outbox_bg.wasm", "https://example.org") });
  await init({ module_or_path: fetch(wasmUrl) });
  await init({ module_or_path: bytes });
}

export async function example(): Promise<void> {
  const config: OutboxConfig = {
    endpoint: "/api/v1/progress",
    token: async (userId: string, { refresh }) => (refresh ? session.refresh() : `${session.accessToken}:${userId}`),
    batchSize: 10,
    backoffMs: [1000, 5000],
    log: "info",
  };
  const outbox: Outbox = await Outbox.open(config);
  await Outbox.open({ endpoint: "/x", token: "static-token" });
  await Outbox.open({ endpoint: "/x", token: () => "sync" });
  outbox.start("u1");
  const entry: ProgressEntry = await outbox.saveWeight(72.5);
  const other = await outbox.saveWeight(80, { userId: "u2", date: new Date("2026-11-01"), priority: 5 });
  await outbox.saveWeight(81, { date: Date.now() });
  const backendId: string | null = entry.backendId;
  const id: string = other.id;
  const when: number = other.date;
  const s: OutboxStats = await outbox.stats();
  const counts: number = s.pending + s.processing + s.failed + s.completed + s.gaveUp;
  const latency: number | null = s.syncLatencyMs;
  const lastSync: number | null = s.lastSyncAt;
  const listed: (OutboxEvent | QuarantinedRecord)[] = await outbox.events({ status: "failed", userId: "u1", limit: 50 });
  // Records set aside as unreadable are told apart by `quarantined`.
  const failed: OutboxEvent[] = listed.filter((e): e is OutboxEvent => !e.quarantined);
  const kept: QuarantinedRecord[] = listed.filter((e): e is QuarantinedRecord => e.quarantined);
  const why: string = kept[0]?.errorMessage ?? "";
  const attempts: number = failed[0]?.attemptCount ?? 0;
  const quantity: number | undefined = listed[0] && !listed[0].quarantined ? listed[0].metadata.quantity : undefined;
  const stale: OutboxEvent[] = await outbox.staleEvents("u2");
  const reset: number = await outbox.resetForRetry(failed.map((e) => e.id));
  const report: PassReport = await outbox.processNow();
  const entries: ProgressEntry[] = await outbox.entries();
  const steps: ProgressEntry = await outbox.save("steps", 8042, { date: Date.now() });
  const metric: Metric = steps.type;
  const fixed: ProgressEntry = await outbox.update(entry.id, { quantity: 72.3 });
  await outbox.update(entry.id, { date: new Date("2026-11-02") });
  const gone: void = await outbox.delete(steps.id);
  const recent = await outbox.entries({ userId: "u1", metric: "weight", from: new Date("2026-11-01"), to: Date.now(), limit: 100 });
  const theirs = await outbox.entries("u2");
  const health: Health = s.health;
  const quota: number | undefined = s.storage?.quota;
  const persisted: boolean | null = s.persisted;
  const op: "create" | "update" | "delete" | undefined = failed[0]?.operation;
  const requests: number = failed[0]?.requestCount ?? 0;
  await Outbox.open({ endpoint: "/x", batchEndpoint: "/x/batch", maxBatchEvents: 50, persist: false, failingAfter: 3, stalledAfterMs: 60000 });
  void [metric, fixed, gone, recent, theirs, health, quota, persisted, op, requests];
  const off: () => void = outbox.subscribe((stats: OutboxStats) => console.log(stats.pending));
  const user: string | null = outbox.currentUser;
  const leader: boolean = outbox.isLeader;
  off();
  outbox.stop();
  outbox.close();
  void [backendId, id, when, counts, latency, lastSync, attempts, why, quantity, stale, reset, report, entries, user, leader];
}
