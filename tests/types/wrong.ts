// Wrong calls, each of which the declarations must refuse: `tsc` fails on an @ts-expect-error
// line that compiles ("Unused '@ts-expect-error' directive").
import init, { Outbox } from "progress-outbox";

export async function wrong(outbox: Outbox): Promise<void> {
  // @ts-expect-error kg must be a number
  await outbox.saveWeight("72.5");
  // @ts-expect-error an unknown option is a typo (userId)
  await outbox.saveWeight(72.5, { userID: "u2" });
  // @ts-expect-error date is a Date or milliseconds, not a string
  await outbox.saveWeight(72.5, { date: "2026-11-01" });
  // @ts-expect-error unknown status
  await outbox.events({ status: "gaveUp" });
  // @ts-expect-error a listed record may be one set aside as unreadable: check `quarantined` first
  (await outbox.events())[0].metadata.quantity;
  // @ts-expect-error endpoint is required
  await Outbox.open({ dbName: "x" });
  // @ts-expect-error an unknown option is a typo
  await Outbox.open({ endpoint: "/x", userID: "u1" });
  // @ts-expect-error the token is a string or a function
  await Outbox.open({ endpoint: "/x", token: 42 });
  // @ts-expect-error the token function is given the user id as a string
  await Outbox.open({ endpoint: "/x", token: (userId: number) => String(userId) });
  // @ts-expect-error log levels are "debug" | "info" | "warn" | "off"
  await Outbox.open({ endpoint: "/x", log: "verbose" });
  // @ts-expect-error the constructor is private: Outbox.open creates outboxes
  new Outbox();
  // @ts-expect-error start returns nothing to await on
  const nothing: Promise<void> = outbox.start("u1");
  // @ts-expect-error stats() is a Promise: await it
  const pending: number = outbox.stats().pending;
  // @ts-expect-error resetForRetry takes an array of event ids
  await outbox.resetForRetry("event-id");
  // @ts-expect-error init takes one argument
  await init("/a.wasm", "/b.wasm");
  // @ts-expect-error unknown metric
  await outbox.save("calories", 200);
  // @ts-expect-error update needs at least one change
  await outbox.update("e1", {});
  // @ts-expect-error update takes an entry id and a changes object
  await outbox.update({ quantity: 1 });
  // @ts-expect-error the changes are quantity and date only
  await outbox.update("e1", { unit: "lb" });
  // @ts-expect-error entries bounds are Dates or milliseconds
  await outbox.entries({ from: "2026-11-01" });
  // @ts-expect-error health is one of four words
  const h: "good" = (await outbox.stats()).health;
  void [nothing, pending, h];
}
