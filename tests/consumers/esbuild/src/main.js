// The app as an esbuild user writes it; build.mjs copies the wasm next to the bundle.
import { Outbox } from "progress-outbox";

const USER = "consumer-esbuild";

async function login(userId) {
  const res = await fetch("/api/v1/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ userId }),
  });
  if (!res.ok) throw new Error(`login failed: ${res.status}`);
  return (await res.json()).token;
}

async function main() {
  const outbox = await Outbox.open({ endpoint: "/api/v1/progress", token: (userId) => login(userId) });
  outbox.start(USER);
  const entry = await outbox.saveWeight(72.5);
  outbox.subscribe((s) => {
    document.querySelector("#status").textContent = `pending ${s.pending}, completed ${s.completed}`;
  });
  return { outbox, entry };
}

// For the test runner: the result, or the error, of the flow above.
window.consumer = main();
