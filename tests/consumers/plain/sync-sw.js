// sync-sw.js: the README's Background Sync recipe, verbatim below this line (consumers.test.mjs checks it).
import { Outbox } from "./node_modules/progress-outbox/index.js";   // or bundle the worker

const tokens = new Map();                       // in memory only: tokens never go to storage
let ready;
const outbox = () => (ready ??= Outbox.open({
  endpoint: "/api/v1/progress",
  token: async (userId) => {
    const t = tokens.get(userId);
    if (t) return t;
    // After the browser restarted this worker, no page may be open to post one: fetch one here
    // if your auth allows it (a refresh cookie, say); else this failure retries, it never gives up.
    throw new Error("no token yet: a page will post one");
  },
}));

// The browser stops an idle worker and starts it again for a `sync` event, with its memory gone:
// the user is kept in the Cache API (the user id only; the outbox's own data is in IndexedDB).
const USER = "/progress-outbox/user";
const remember = async (userId) => {
  const c = await caches.open("progress-outbox-session");
  await (userId ? c.put(USER, new Response(userId)) : c.delete(USER));
};
const started = async () => {
  const o = await outbox();
  const kept = await (await caches.open("progress-outbox-session")).match(USER);
  const userId = kept ? await kept.text() : null;
  if (userId && o.currentUser !== userId) o.start(userId);
  return o;
};

self.addEventListener("message", (e) => {         // from the page: postMessage({type, userId, token})
  if (e.data.type === "token") tokens.set(e.data.userId, e.data.token);
  if (e.data.type === "user") e.waitUntil(remember(e.data.userId).then(started));
  if (e.data.type === "logout") e.waitUntil(remember(null).then(outbox).then((o) => o.stop()));
});

self.addEventListener("sync", (e) => {            // Background Sync, where the browser has it
  if (e.tag !== "progress-outbox") return;
  e.waitUntil((async () => {
    const o = await started();
    if (!o.currentUser) return;                   // logged out: nothing to upload
    let report = await o.processNow();
    // processNow() answers within 9 s; a pass still going (a slow server) keeps the worker alive.
    while (!report.finished) report = await o.processNow();
    const s = await o.stats();
    // Rejecting asks the browser to fire `sync` again later (it backs off on its own).
    if (!report.offline && s.pending + s.processing + s.retrying > 0) throw new Error("events still waiting");
  })());
});
