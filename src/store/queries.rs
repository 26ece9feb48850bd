//! Reads: stats, event and entry listings, processing and retrying events. Each goes through an
//! index and reads only what it returns.

use idb::CursorDirection;
use wasm_bindgen::JsValue;

use super::quarantine::{self, Quarantined};
use super::records::{decode_entry, decode_event, decode_meta, index, meta_key, ENTRIES, EVENTS, META, QUARANTINE};
use super::Store;
use crate::domain::entry::ProgressEntry;
use crate::domain::event::{EventStatus, OutboxEvent, StateKey};
use crate::domain::query::EntriesQuery;
use crate::domain::stats::{Counts, Stats};
use crate::domain::time::TimeMs;
use crate::domain::Result;
use crate::platform::idb::{bound, error, key2, key3, walk, Asked, Mode, Round};
use crate::platform::timer::Deadline;
use crate::platform::{get, now};

fn s(v: &str) -> JsValue {
    JsValue::from_str(v)
}

/// All keys `[user, sk, *]` of the state index.
fn state_range(user: &str, sk: StateKey) -> Result<idb::Query> {
    let sk = sk as u8 as f64;
    bound(&key3(&s(user), sk, f64::NEG_INFINITY), &key3(&s(user), sk, f64::INFINITY))
}

/// An unreadable record met while reading, to be set aside.
fn unreadable(raw: &JsValue, why: String) -> Quarantined {
    Quarantined { store: EVENTS.into(), key: get(raw, "id"), user_id: get(raw, "userId").as_string(), reason: why, at: now(), record: raw.clone() }
}

/// Reads a raw event record into `read`, or, if this version cannot read it, into `odd`.
fn read_event(raw: &JsValue, read: &mut Vec<OutboxEvent>, odd: &mut Vec<Quarantined>) {
    match decode_event(raw) {
        Ok(e) => read.push(e),
        Err(why) => odd.push(unreadable(raw, why)),
    }
}

/// Do two reads of a raw event record hold the same claim (`claimedBy`, `claims`)? Each read is
/// a fresh copy: objects compare by their JSON, the rest by `Object.is` (a `NaN` matches itself).
fn same_claim(a: &JsValue, b: &JsValue) -> bool {
    ["claimedBy", "claims"].iter().all(|f| {
        let (x, y) = (get(a, f), get(b, f));
        js_sys::Object::is(&x, &y)
            || (x.is_object() && y.is_object() && js_sys::JSON::stringify(&x).ok().map(String::from) == js_sys::JSON::stringify(&y).ok().map(String::from))
    })
}

/// Is this raw event record claimed (`processing`, by its status or its state key)?
fn claimed(raw: &JsValue) -> bool {
    get(raw, "status").as_string().as_deref() == Some("processing") || get(raw, "sk").as_f64() == Some(StateKey::Processing as u8 as f64)
}

impl Store {
    /// `user`'s stats (without health, persistence and storage, which the caller adds): five
    /// index counts, two index reads and two small records, whatever the number of events.
    pub async fn stats(&self, user: &str) -> Result<Stats> {
        const OP: &str = "reading stats";
        let tx = self.db().begin(&[EVENTS, META, QUARANTINE], Mode::Read, OP).await?;
        tx.run(async {
            let state = tx.store(EVENTS)?.index(index::STATE).map_err(error(OP))?;
            let mut round = Round::new(OP);
            // Counts per state, in Counts order; then the oldest of the states not delivered yet:
            // pending and waiting give oldestPendingAt; with processing and retrying, the oldest
            // event not delivered yet (health's "stalled").
            let keys = [StateKey::Pending, StateKey::Waiting, StateKey::Processing, StateKey::Retrying, StateKey::GaveUp];
            // Plain loops, not `collect::<Result<Vec<_>>>()`: no iterator adapter per call site (smaller wasm).
            let (mut counts, mut oldest) = (Vec::with_capacity(keys.len()), Vec::with_capacity(4));
            for &sk in &keys {
                counts.push(round.ask(state.count(Some(state_range(user, sk)?)))?);
            }
            for &sk in &keys[..4] {
                oldest.push(round.ask(state.get_all(Some(state_range(user, sk)?), Some(1)))?);
            }
            let meta = round.ask(tx.store(META)?.get(meta_key(user)))?;
            let quarantined = quarantine::ask_count(&mut round, &tx.store(QUARANTINE)?, user)?;
            round.done().await?;
            let n: Vec<u64> = counts.iter().map(Asked::count).collect();
            let (mut oldest_pending_at, mut oldest_unsynced_at): (Option<TimeMs>, Option<TimeMs>) = (None, None);
            for (i, r) in oldest.iter().enumerate() {
                if let Some(t) = r.values().first().and_then(|first| get(first, "createdAt").as_f64()) {
                    let t = t as TimeMs;
                    if i < 2 {
                        oldest_pending_at = Some(oldest_pending_at.map_or(t, |o| o.min(t)));
                    }
                    oldest_unsynced_at = Some(oldest_unsynced_at.map_or(t, |o| o.min(t)));
                }
            }
            let counts = Counts { pending: n[0], waiting: n[1], processing: n[2], retrying: n[3], gave_up: n[4] };
            let quarantined = quarantined.iter().map(Asked::count).sum();
            Ok(Stats { oldest_unsynced_at, ..Stats::new(user, counts, &decode_meta(&meta.value()), oldest_pending_at, quarantined) })
        })
        .await
    }

    /// `user`'s events, newest first, optionally of one status, at most `limit`; and the ones
    /// that cannot be read (kept aside, or met while listing).
    pub async fn events(&self, user: &str, status: Option<EventStatus>, limit: Option<u32>) -> Result<(Vec<OutboxEvent>, Vec<Quarantined>)> {
        const OP: &str = "listing events";
        let (runs, mut odd) = async {
            let tx = self.db().begin(&[EVENTS, QUARANTINE], Mode::Read, OP).await?;
            tx.run(async {
                let state = tx.store(EVENTS)?.index(index::STATE).map_err(error(OP))?;
                let keys: &[StateKey] = match status {
                    Some(s) => StateKey::of_status(s),
                    None => &StateKey::ALL,
                };
                // Each state's range walked backwards (newest first), `limit` at most from each.
                let mut runs = Vec::with_capacity(keys.len());
                let mut odd = Vec::new();
                for &sk in keys {
                    let mut run = Vec::new();
                    walk(state.open_cursor(Some(state_range(user, sk)?), Some(CursorDirection::Prev)), OP, |raw| {
                        read_event(&raw, &mut run, &mut odd);
                        limit.is_none_or(|l| (run.len() as u32) < l)
                    })
                    .await?;
                    runs.push(run);
                }
                let kept = if status.is_none() || status == Some(EventStatus::Failed) {
                    quarantine::list_for(&tx.store(QUARANTINE)?, user, EVENTS).await?
                } else {
                    Vec::new()
                };
                Ok((runs, (odd, kept)))
            })
            .await
        }
        .await?;
        let (met, kept) = std::mem::take(&mut odd);
        if !met.is_empty() {
            // One claimed may be in flight in a context of another version, which can read it.
            self.set_aside(&met, false).await;
        }
        let mut all_odd = kept;
        all_odd.extend(met);
        let listed = merge_newest_first(runs, limit);
        // `limit` bounds the whole list: the records set aside come after the readable ones.
        if let Some(l) = limit {
            all_odd.truncate((l as usize).saturating_sub(listed.len()));
        }
        Ok((listed, all_odd))
    }

    /// One event by id (`None`: unknown, or unreadable).
    pub async fn event(&self, id: &str) -> Result<Option<OutboxEvent>> {
        const OP: &str = "reading an event";
        let tx = self.db().begin(&[EVENTS], Mode::Read, OP).await?;
        tx.run(async {
            let mut round = Round::new(OP);
            let found = round.ask(tx.store(EVENTS)?.get(s(id)))?;
            round.done().await?;
            Ok(decode_event(&found.value()).ok())
        })
        .await
    }

    /// The claims (id, claim number) of those of `ids` that are `processing` now.
    pub async fn processing_claims(&self, ids: &[String], by: Deadline) -> Result<Vec<(String, u32)>> {
        const OP: &str = "reading the claims of events to reset";
        let tx = self.db().begin_by(&[EVENTS], Mode::Read, OP, by).await?;
        tx.run(async {
            let events = tx.store(EVENTS)?;
            let mut round = Round::new(OP);
            let mut reads = Vec::with_capacity(ids.len());
            for id in ids {
                reads.push(round.ask(events.get(s(id)))?);
            }
            round.done().await?;
            let mut claims = Vec::new();
            for read in reads {
                if let Ok(e) = decode_event(&read.value()) {
                    if e.status == EventStatus::Processing {
                        claims.push((e.id, e.claims));
                    }
                }
            }
            Ok(claims)
        })
        .await
    }

    /// `user`'s events in one state: `Processing` (at most a few batches), or `Retrying` (read
    /// once per lead, for the retry schedule; all of them, however many); and those this version
    /// cannot read, for the caller to set aside (else, `processing`, one would stay counted there
    /// for good: never judged stale, never recovered).
    pub async fn in_state(&self, user: &str, sk: StateKey) -> Result<(Vec<OutboxEvent>, Vec<Quarantined>)> {
        const OP: &str = "listing events in one state";
        let tx = self.db().begin(&[EVENTS], Mode::Read, OP).await?;
        tx.run(async {
            let state = tx.store(EVENTS)?.index(index::STATE).map_err(error(OP))?;
            let mut round = Round::new(OP);
            let found = round.ask(state.get_all(Some(state_range(user, sk)?), None))?;
            round.done().await?;
            let (mut read, mut odd) = (Vec::new(), Vec::new());
            for raw in found.values().iter() {
                read_event(raw, &mut read, &mut odd);
            }
            Ok((read, odd))
        })
        .await
    }

    /// `entries(query)`: newest measurement first, through `[userId, date]` or
    /// `[userId, type, date]`, reading only the entries returned.
    pub async fn entries(&self, q: &EntriesQuery) -> Result<Vec<ProgressEntry>> {
        const OP: &str = "listing entries";
        let (found, odd) = async {
            let tx = self.db().begin(&[ENTRIES], Mode::Read, OP).await?;
            tx.run(async {
                let entries = tx.store(ENTRIES)?;
                let u = s(&q.user_id);
                let (from, to) = (q.from.unwrap_or(f64::NEG_INFINITY), q.to.unwrap_or(f64::INFINITY));
                let key = |t: f64| -> JsValue {
                    match q.metric {
                        Some(m) => js_sys::Array::of3(&u, &s(m.name()), &JsValue::from_f64(t)).into(),
                        None => key2(&u, t),
                    }
                };
                let idx = if q.metric.is_some() { index::BY_USER_METRIC_DATE } else { index::BY_USER_DATE };
                // Without `to`, the range runs past every number, to the records whose date is
                // not one (a string written by an older app sorts after numbers, arrays after
                // strings): they come first, newest first, and are quarantined as unreadable. Its
                // end is the key just past the user's (or metric's) last: the next string after
                // it ("\0" appended) ends the range, whatever key the date holds.
                let next = |v: &str| s(&[v, "\0"].concat());
                let upper: JsValue = match (q.to, q.metric) {
                    (Some(_), _) => key(to),
                    (None, Some(m)) => js_sys::Array::of2(&u, &next(m.name())).into(),
                    (None, None) => js_sys::Array::of1(&next(&q.user_id)).into(),
                };
                let range = bound(&key(from), &upper)?;
                let index = entries.index(idx).map_err(error(OP))?;
                let (mut found, mut odd) = (Vec::new(), Vec::new());
                walk(index.open_cursor(Some(range), Some(CursorDirection::Prev)), OP, |raw| {
                    match decode_entry(&raw) {
                        Ok(e) => found.push(e),
                        Err(why) => odd.push(Quarantined { store: ENTRIES.into(), ..unreadable(&raw, why) }),
                    }
                    q.limit.is_none_or(|l| (found.len() as u32) < l)
                })
                .await?;
                Ok((found, odd))
            })
            .await
        }
        .await?;
        if !odd.is_empty() {
            self.set_aside(&odd, false).await;
        }
        Ok(found)
    }

    /// Moves unreadable records met by a read into quarantine (best effort: a failure leaves them
    /// where they are, to be met again). Each is read again in this transaction and moved as it
    /// stands now: between the read and this, another context may have given it its backend id
    /// (an acknowledged create), deleted it, or rewritten it readable. A claimed event is moved
    /// only with `claimed_too`, and then only under the claim it was read with (its claimer judged
    /// gone by the caller); otherwise it may be in flight in a context of another version of the
    /// app, which can read it.
    pub async fn set_aside(&self, records: &[Quarantined], claimed_too: bool) {
        const OP: &str = "setting unreadable records aside";
        let moved: Result<usize> = async {
            let tx = self.db().begin(&[EVENTS, ENTRIES, QUARANTINE], Mode::Relaxed, OP).await?;
            tx.run(async {
                let q = tx.store(QUARANTINE)?;
                let from = |r: &Quarantined| tx.store(if r.store == EVENTS { EVENTS } else { ENTRIES });
                let mut round = Round::new(OP);
                let (mut now, mut before) = (Vec::with_capacity(records.len()), Vec::with_capacity(records.len()));
                for r in records {
                    now.push(round.ask(from(r)?.get(r.key.clone()))?);
                    // An entry's copy kept before may hold its backend id: the new one carries it over.
                    let entity = r.key.as_string().filter(|_| r.store == ENTRIES);
                    before.push(entity.map(|id| quarantine::ask_kept(&mut round, &q, ENTRIES, &id).map(|k| (id, k))).transpose()?);
                }
                round.done().await?;
                let mut moved = 0;
                for ((r, now), before) in records.iter().zip(&now).zip(before) {
                    let raw = now.value();
                    let why = if r.store == EVENTS { decode_event(&raw).err() } else { decode_entry(&raw).err() };
                    // Gone since, or readable again: nothing to set aside.
                    let Some(why) = why.filter(|_| raw.is_object()) else { continue };
                    if r.store == EVENTS && claimed(&raw) && !(claimed_too && same_claim(&raw, &r.record)) {
                        continue;
                    }
                    if let Some((entity, kept)) = before {
                        quarantine::carry_id(&kept.value(), &raw, &entity);
                    }
                    quarantine::move_in(&from(r)?, &q, &r.store, &raw, &why, r.at)?;
                    moved += 1;
                }
                Ok(moved)
            })
            .await
        }
        .await;
        match moved {
            Ok(0) => {}
            Ok(n) => self.db().log().warn(|| format!("{n} unreadable records were set aside (kept in quarantine; see stats().quarantined)")),
            Err(e) => self.db().log().warn(|| format!("could not set unreadable records aside: {e}")),
        }
    }
}

/// Merges runs that are each newest first into one newest-first list of at most `limit`. (A
/// k-way merge of at most six runs: linear, and no standard sort linked into the wasm.)
fn merge_newest_first(runs: Vec<Vec<OutboxEvent>>, limit: Option<u32>) -> Vec<OutboxEvent> {
    let total: usize = runs.iter().map(Vec::len).sum();
    let want = limit.map_or(total, |l| (l as usize).min(total));
    let mut runs: Vec<std::collections::VecDeque<OutboxEvent>> = runs.into_iter().map(Into::into).collect();
    let mut out = Vec::with_capacity(want);
    while out.len() < want {
        let mut best: Option<usize> = None;
        for (i, run) in runs.iter().enumerate() {
            let Some(c) = run.front() else { continue };
            if best.and_then(|b| runs[b].front()).is_none_or(|cur| (c.created_at, &c.id) > (cur.created_at, &cur.id)) {
                best = Some(i);
            }
        }
        match best.and_then(|b| runs[b].pop_front()) {
            Some(e) => out.push(e),
            None => break,
        }
    }
    out
}
