// The same app, loading the wasm from the URL esbuild gives it (loader { ".wasm": "file" }).
import init, { Outbox } from "progress-outbox";
import wasmUrl from "progress-outbox/progress_outbox_bg.wasm";

const USER = "consumer-esbuild-explicit";

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
  await init({ module_or_path: wasmUrl }); // before the first Outbox.open
  const outbox = await Outbox.open({ endpoint: "/api/v1/progress", token: (userId) => login(userId) });
  outbox.start(USER);
  const entry = await outbox.saveWeight(72.5);
  return { outbox, entry };
}

// For the test runner: the result, or the error, of the flow above.
window.consumer = main();
