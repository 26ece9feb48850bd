// The app as a Vite + TypeScript user writes it: no init() call, no configuration.
import { Outbox, type OutboxStats, type ProgressEntry } from "progress-outbox";

const USER = "consumer-vite";

async function login(userId: string): Promise<string> {
  const res = await fetch("/api/v1/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ userId }),
  });
  if (!res.ok) throw new Error(`login failed: ${res.status}`);
  return ((await res.json()) as { token: string }).token;
}

async function main(): Promise<{ outbox: Outbox; entry: ProgressEntry }> {
  const outbox = await Outbox.open({
    endpoint: "/api/v1/progress",
    token: (userId) => login(userId), // asked again with { refresh: true } after a 401
  });
  outbox.start(USER);
  const entry = await outbox.saveWeight(72.5);
  outbox.subscribe((s: OutboxStats) => {
    document.querySelector("#status")!.textContent = `pending ${s.pending}, completed ${s.completed}`;
  });
  return { outbox, entry };
}

// For the test runner: the result, or the error, of the flow above.
(window as unknown as { consumer: Promise<unknown> }).consumer = main();
