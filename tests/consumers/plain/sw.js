// A module service worker (registered with { type: "module" }) that owns the outbox.
// Import maps do not apply to workers: import the package by its path (or bundle the worker).
// Outbox.open loads the wasm on first use, so there is no top-level await (not allowed in a
// service worker) and no init() call.
import { Outbox } from "./node_modules/progress-outbox/index.js";

let token = null;
let opened;
const outbox = () => (opened ??= Outbox.open({ endpoint: "/api/v1/progress", token: () => token }));

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (e) => e.waitUntil(self.clients.claim()));

self.addEventListener("message", (e) => {
  const [port] = e.ports;
  const reply = async () => {
    const o = await outbox();
    if (e.data.type === "save") {
      token = e.data.token;
      o.start(e.data.userId);
      return { entry: await o.saveWeight(e.data.kg) };
    }
    if (e.data.type === "stats") return { stats: await o.stats() };
    throw new Error(`unknown message ${e.data.type}`);
  };
  e.waitUntil(reply().then((r) => port.postMessage(r), (err) => port.postMessage({ error: String(err) })));
});
