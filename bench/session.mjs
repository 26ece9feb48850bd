// One unattended bench page: `calls` ([[name, args], ...] of bench.js's window.bench) run in order
// in a Chromium launched for them, with a fresh profile on disk (or `--incognito`: IndexedDB in
// memory). No DevTools client is attached: the page writes each result to the console and this
// reads Chromium's log on stderr (Playwright's per-request instrumentation, measured, cost a bare
// fetch loop ~40% of its rate). `onResult(i, value, pid)` is called as each result arrives.
import { spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { CHROMIUM, CHROMIUM_ARGS, tempDir } from "../tests/e2e/helpers.mjs";

// What Playwright passes too: a page alone and visible is not throttled anyway, but say so.
const QUIET_ARGS = ["--disable-background-timer-throttling", "--disable-renderer-backgrounding", "--disable-backgrounding-occluded-windows", "--no-default-browser-check"];

export async function unattended(serverUrl, calls, { inMemory = false, onResult = () => {}, onStart = () => {}, timeoutMs = 40 * 60_000 } = {}) {
  const profile = tempDir("bench");
  const url = `${serverUrl}/bench/page.html#${encodeURIComponent(JSON.stringify(calls))}`;
  const args = ["--headless", ...CHROMIUM_ARGS, ...QUIET_ARGS, `--user-data-dir=${profile}`, "--enable-logging=stderr", "--v=0", ...(inMemory ? ["--incognito"] : []), url];
  // Its own process group: the whole browser (every child process) is killed at the end.
  const proc = spawn(CHROMIUM, args, { stdio: ["ignore", "ignore", "pipe"], detached: true });
  const exited = new Promise((resolve) => proc.once("exit", resolve));
  onStart(proc.pid, profile);
  const out = [];
  let tail = "";
  try {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`bench page timed out after ${timeoutMs / 60000} min:\n${tail}`)), timeoutMs);
      let partial = "";
      proc.stderr.on("data", (d) => {
        tail = (tail + d).slice(-4000);
        const lines = (partial + d).split("\n");
        partial = lines.pop();
        for (const line of lines) {
          let m;
          if ((m = /BENCH-RESULT (\d+) ([A-Za-z0-9+/=]+)/.exec(line))) {
            const i = Number(m[1]);
            out[i] = JSON.parse(Buffer.from(m[2], "base64").toString("utf8"));
            onResult(i, out[i], proc.pid);
          } else if ((m = /BENCH-ERROR (\d+) (.*)/.exec(line))) (clearTimeout(timer), reject(new Error(`bench page: ${m[2]}`)));
          else if (/BENCH-DONE/.test(line)) (clearTimeout(timer), resolve());
          else if (/CONSOLE.*Uncaught/.test(line)) console.error("[page error]", line);
        }
      });
      proc.once("exit", (code) => (clearTimeout(timer), reject(new Error(`chromium exited (${code}) before the bench page finished:\n${tail}`))));
    });
  } finally {
    try {
      process.kill(-proc.pid, "SIGKILL");
    } catch {
      proc.kill("SIGKILL");
    }
    await exited;
    rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
  }
  return out;
}
