// Type-checks a typical use of the package against its published declarations
// (`tsc -p tests/types`, part of `npm test`). Lines marked @ts-expect-error must stay errors.
import init, { Outbox, type OutboxConfig, type OutboxEvent, type OutboxStats, type ProgressEntry, type PassReport } from "../../pkg/progress_outbox.js";

declare const session: { accessToken: string };

export async function example(): Promise<void> {
  await init();
  const config: OutboxConfig = {
    endpoint: "/api/v1/progress",
    token: async (userId: string) => `${session.accessToken}:${userId}`,
    batchSize: 10,
    backoffMs: [1000, 5000],
    log: "info",
  };
  const outbox: Outbox = await Outbox.open(config);
  outbox.start("u1");
  const entry: ProgressEntry = await outbox.saveWeight(72.5);
  const other = await outbox.saveWeight(80, { userId: "u2", date: new Date("2026-11-01"), priority: 5 });
  const backendId: string | null = entry.backendId;
  const unit: "kg" = other.unit;
  const s: OutboxStats = await outbox.stats();
  const counts: number = s.pending + s.processing + s.failed + s.completed + s.gaveUp;
  const latency: number | null = s.syncLatencyMs;
  const failed: OutboxEvent[] = await outbox.events({ status: "failed", userId: "u1", limit: 50 });
  const gaveUp: boolean = failed[0]?.gaveUp ?? false;
  const stale: OutboxEvent[] = await outbox.staleEvents("u2");
  const reset: number = await outbox.resetForRetry(failed.map((e) => e.id));
  const report: PassReport = await outbox.processNow();
  const entries: ProgressEntry[] = await outbox.entries();
  const off: () => void = outbox.subscribe((stats: OutboxStats) => console.log(stats.pending));
  const user: string | null = outbox.currentUser;
  off();
  outbox.stop();
  outbox.close();
  void [backendId, unit, counts, latency, gaveUp, stale, reset, report, entries, user];

  // @ts-expect-error kg must be a number
  await outbox.saveWeight("72.5");
  // @ts-expect-error unknown status
  await outbox.events({ status: "gaveUp" });
  // @ts-expect-error endpoint is required
  await Outbox.open({ dbName: "x" });
  // @ts-expect-error the token is a string or a function
  await Outbox.open({ endpoint: "/x", token: 42 });
  // @ts-expect-error start returns nothing to await on
  const nothing: Promise<void> = outbox.start("u1");
  void nothing;
}
