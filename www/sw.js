// Service worker of the demo PWA (a module worker).
// 1. App shell: cached at install, served network-first with the cache as fallback, so the app
//    opens with no network after the first visit and still picks up new code when online.
// 2. API calls are never cached.
const SHELL_CACHE = "progress-shell-v1";
const SHELL = [
  "/", "/index.html", "/app.js", "/style.css", "/manifest.webmanifest", "/icons/icon-192.png", "/icons/icon-512.png",
  "/pkg/progress_outbox.js", "/pkg/progress_outbox_bg.wasm",
];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(SHELL_CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) if (key !== SHELL_CACHE) await caches.delete(key);
    await self.clients.claim();
  })());
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== location.origin || url.pathname.startsWith("/api/")) return;
  event.respondWith((async () => {
    const cache = await caches.open(SHELL_CACHE);
    try {
      const fresh = await fetch(event.request);
      if (fresh.ok) cache.put(url.pathname === "/index.html" ? "/" : event.request, fresh.clone());
      return fresh;
    } catch (err) {
      const cached = await cache.match(event.request, { ignoreSearch: true }) || (event.request.mode === "navigate" ? await cache.match("/") : undefined);
      if (cached) return cached;
      throw err;
    }
  })());
});
