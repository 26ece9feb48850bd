//! Schema v4 over a database written in the v3 layout (stores, indexes and record shapes of
//! `git show e06ca50:src/store/schema.rs` and `records.rs`: events without operation or seq,
//! metadata without unit): every entry and event is intact after the upgrade, unfinished events
//! upload, completed ones stay completed, and the upgraded entries can be edited and deleted.

use progress_outbox::Outbox;
use wasm_bindgen_test::wasm_bindgen_test;

use crate::support::*;

/// The v3 fixture: entries, events and meta as schema v3 wrote them. `t0` is an hour ago.
fn fixture(t0: f64) -> String {
    let entry = |id: &str, user: &str, q: f64, backend: Option<&str>, at: f64| {
        let b = backend.map_or("null".to_owned(), |b| format!("\"{b}\""));
        format!(
            r#"{{"id": "{id}", "userId": "{user}", "type": "weight", "quantity": {q}, "unit": "kg", "date": {at}, "backendId": {b}, "createdAt": {at}, "updatedAt": {at}}}"#
        )
    };
    // v3 events: status, sk (0 pending, 1 processing, 2 completed, 3 retrying, 4 gave up),
    // rdy = -priority while pending, due = nextAttemptAt while retrying, done = completedAt.
    #[allow(clippy::too_many_arguments)]
    let event = |id: &str,
                 entity: &str,
                 user: &str,
                 q: f64,
                 at: f64,
                 status: &str,
                 sk: u8,
                 attempts: u32,
                 last: Option<f64>,
                 next: Option<f64>,
                 done: Option<f64>,
                 err: Option<&str>| {
        let o = |v: Option<f64>| v.map_or("null".to_owned(), |v| v.to_string());
        let rdy = if sk == 0 { "0".to_owned() } else { "null".to_owned() };
        let due = if sk == 3 { o(next) } else { "null".to_owned() };
        let done_key = if sk == 2 { o(done) } else { "null".to_owned() };
        let err = err.map_or("null".to_owned(), |e| format!("\"{e}\""));
        format!(
            r#"{{"id": "{id}", "eventType": "progressEntry", "entityId": "{entity}", "userId": "{user}", "status": "{status}",
                "metadata": {{"type": "weight", "quantity": {q}, "date": {at}}}, "isNewRecord": true, "attemptCount": {attempts},
                "maxAttempts": 5, "priority": 0, "createdAt": {at}, "lastAttemptAt": {}, "nextAttemptAt": {}, "completedAt": {},
                "errorMessage": {err}, "sk": {sk}, "rdy": {rdy}, "due": {due}, "done": {done_key}}}"#,
            o(last),
            o(next),
            o(done)
        )
    };
    let entries = [
        entry("e-done-1", "u1", 70.0, Some("b-1"), t0),
        entry("e-done-2", "u1", 70.5, Some("b-2"), t0 + 1.0),
        entry("e-pending", "u1", 71.0, None, t0 + 2.0),
        entry("e-retry", "u1", 72.0, None, t0 + 3.0),
        entry("e-proc", "u1", 73.0, None, t0 + 4.0),
        entry("e-gaveup", "u1", 74.0, None, t0 + 5.0),
        entry("e-other", "u2", 90.0, None, t0 + 6.0),
    ];
    let events = [
        event("ev-done-1", "e-done-1", "u1", 70.0, t0, "completed", 2, 0, Some(t0 + 100.0), None, Some(t0 + 200.0), None),
        event("ev-done-2", "e-done-2", "u1", 70.5, t0 + 1.0, "completed", 2, 1, Some(t0 + 300.0), None, Some(t0 + 400.0), None),
        event("ev-pending", "e-pending", "u1", 71.0, t0 + 2.0, "pending", 0, 0, None, None, None, None),
        event("ev-retry", "e-retry", "u1", 72.0, t0 + 3.0, "failed", 3, 1, Some(t0 + 500.0), Some(t0 + 1500.0), None, Some("HTTP 503")),
        event("ev-proc", "e-proc", "u1", 73.0, t0 + 4.0, "processing", 1, 1, Some(t0 + 600.0), None, None, None),
        event("ev-gaveup", "e-gaveup", "u1", 74.0, t0 + 5.0, "failed", 4, 5, Some(t0 + 700.0), None, None, Some("HTTP 422: bad value")),
        event("ev-other", "e-other", "u2", 90.0, t0 + 6.0, "pending", 0, 0, None, None, None, None),
    ];
    format!(
        r#"{{"entries": [{}], "events": [{}], "meta": {{
            "user:u1": {{"completed": 2, "lastSyncAt": {}, "lastError": "HTTP 422: bad value", "lastErrorAt": {}, "latencies": [200, 400]}},
            "leader:u1": {{"owner": "a-context-of-the-old-version", "beatAt": {t0}}}
        }}}}"#,
        entries.join(","),
        events.join(","),
        t0 + 400.0,
        t0 + 700.0
    )
}

#[wasm_bindgen_test]
async fn a_v3_database_opens_with_every_entry_and_event_and_its_unfinished_events_upload() {
    let db = fresh_db("schema-v3");
    let t0 = now() - 3_600_000.0;
    let fx = json(&fixture(t0));
    create_v3(&db, &fx).await;
    let v3 = schema(&db).await;
    assert_eq!(num(&v3, "version"), 3.0);

    let srv = Server::new("", "");
    let o = Ob::open(&db, "{}").await;
    let v4 = schema(&db).await;
    assert_eq!(num(&v4, "version"), 4.0);
    let stores = get(&v4, "stores");
    for (store, indexes) in [
        ("entries", vec!["byUserDate", "byUserMetricDate"]),
        ("events", vec!["byEntity", "done", "ready", "retry", "state"]),
        ("meta", vec![]),
        ("tombstones", vec![]),
        ("quarantine", vec!["byUser"]),
    ] {
        let found: Vec<String> = array(&get(&stores, store)).iter().map(|v| v.as_string().unwrap()).collect();
        assert_eq!(found, indexes, "indexes of {store}");
    }

    // Every entry, as it was.
    let old_entries = array(&get(&fx, "entries"));
    let mut listed = o.entries_of("u1").await;
    listed.extend(o.entries_of("u2").await);
    assert_eq!(listed.len(), old_entries.len());
    for old in &old_entries {
        let id = string(old, "id");
        let e = listed.iter().find(|e| string(e, "id") == id).unwrap_or_else(|| panic!("entry {id} is listed"));
        for key in ["userId", "type", "quantity", "unit", "date", "backendId", "createdAt", "updatedAt"] {
            assert_eq!(show(&get(e, key)), show(&get(old, key)), "entry {id}: {key}");
        }
    }
    // Every event, as it was (with the v4 fields filled in).
    let old_events = array(&get(&fx, "events"));
    let mut evs = o.events("u1").await;
    evs.extend(o.events("u2").await);
    assert_eq!(evs.len(), old_events.len());
    for old in &old_events {
        let id = string(old, "id");
        let e = evs.iter().find(|e| string(e, "id") == id).unwrap_or_else(|| panic!("event {id} is listed"));
        for key in [
            "entityId",
            "userId",
            "status",
            "attemptCount",
            "maxAttempts",
            "priority",
            "createdAt",
            "lastAttemptAt",
            "completedAt",
            "errorMessage",
            "isNewRecord",
        ] {
            assert_eq!(show(&get(e, key)), show(&get(old, key)), "event {id}: {key}");
        }
        assert_eq!(string(e, "operation"), "create", "event {id}: a v3 event is a create");
        let (m, om) = (get(e, "metadata"), get(old, "metadata"));
        assert_eq!(
            (string(&m, "type"), num(&m, "quantity"), num(&m, "date"), string(&m, "unit")),
            (string(&om, "type"), num(&om, "quantity"), num(&om, "date"), "kg".to_owned()),
            "event {id}: metadata"
        );
    }
    let gave_up = evs.iter().find(|e| string(e, "id") == "ev-gaveup").unwrap();
    assert_eq!(get(gave_up, "gaveUp").as_bool(), Some(true));
    let st = o.stats("u1").await;
    assert_eq!((num(&st, "completed"), num(&st, "gaveUp"), num(&st, "quarantined")), (2.0, 1.0, 0.0));
    assert_eq!(opt_string(&st, "lastError").as_deref(), Some("HTTP 422: bad value"));

    // The unfinished ones upload, each once with its own key; the others are left as they are.
    o.start("u1");
    let what = "the pending, retrying and interrupted v3 events to complete";
    eventually(5000, what, || async {
        let evs = o.events("u1").await;
        ["ev-pending", "ev-retry", "ev-proc"].iter().all(|id| evs.iter().any(|e| string(e, "id") == *id && string(e, "status") == "completed"))
    })
    .await;
    o.process_now().await;
    let mut keys: Vec<String> = srv.requests().iter().map(|r| string(r, "key")).collect();
    keys.sort();
    assert_eq!(keys, ["ev-pending", "ev-proc", "ev-retry"]);
    for r in srv.requests() {
        let b = get(&r, "body");
        assert_eq!((string(&r, "method"), string(&b, "unit"), string(&b, "type")), ("POST".to_owned(), "kg".to_owned(), "weight".to_owned()));
    }
    let evs = o.events("u1").await;
    let by_id = |id: &str| evs.iter().find(|e| string(e, "id") == id).unwrap().clone();
    for id in ["ev-done-1", "ev-done-2"] {
        let e = by_id(id);
        let old = old_events.iter().find(|e| string(e, "id") == id).unwrap();
        assert_eq!(string(&e, "status"), "completed");
        assert_eq!(num(&e, "completedAt"), num(old, "completedAt"), "{id} stays completed as it was");
    }
    let g = by_id("ev-gaveup");
    assert_eq!((string(&g, "status"), get(&g, "gaveUp").as_bool(), num(&g, "attemptCount")), ("failed".to_owned(), Some(true), 5.0));
    let entries = o.entries_of("u1").await;
    let backend = |id: &str| opt_string(entries.iter().find(|e| string(e, "id") == id).unwrap(), "backendId");
    assert_eq!(backend("e-done-1").as_deref(), Some("b-1"));
    for id in ["e-pending", "e-retry", "e-proc"] {
        assert!(backend(id).is_some_and(|b| b.starts_with("srv-")), "{id} acknowledged");
    }
    assert_eq!(backend("e-gaveup"), None);
    assert_eq!(num(&o.stats("u1").await, "completed"), 5.0);
    // The other user's event waits for its user.
    let other = o.events("u2").await.remove(0);
    assert_eq!(string(&other, "status"), "pending");

    // Entries from before the upgrade can be edited and deleted.
    let b = backend("e-pending").unwrap();
    o.update("e-pending", r#"{"quantity": 71.5}"#).await;
    o.delete("e-done-2").await;
    eventually(5000, "the update and the delete to complete", || async {
        let evs = o.events("u1").await;
        evs.len() == 8 && evs.iter().filter(|e| string(e, "status") == "completed").count() == 7
    })
    .await;
    let put = srv.of("PUT").remove(0);
    assert!(string(&put, "path").ends_with(&format!("/{b}")));
    assert_eq!(num(&get(&put, "body"), "quantity"), 71.5);
    let del = srv.of("DELETE").remove(0);
    assert!(string(&del, "path").ends_with("/b-2"), "deleted by its v3 backend id (the fake API does not know it: 404 completes)");
    assert!(!o.entries_of("u1").await.iter().any(|e| string(e, "id") == "e-done-2"));
    srv.assert_one_at_a_time();
    finish(&db, &[&o]).await;
}

#[wasm_bindgen_test]
async fn an_empty_v3_database_upgrades_and_works() {
    let db = fresh_db("schema-v3-empty");
    create_v3(&db, &json(r#"{"entries": [], "events": [], "meta": {}}"#)).await;
    let srv = Server::new("", "");
    let o = Ob::open(&db, "{}").await;
    assert_eq!(num(&schema(&db).await, "version"), 4.0);
    o.start("u1");
    let e = o.save("steps", 10.0, "{}").await;
    o.drained("u1", Some(1), 3000).await;
    assert_eq!(srv.requests().len(), 1);
    assert_eq!(string(&get(&srv.requests()[0], "body"), "localId"), string(&e, "id"));
    finish(&db, &[&o]).await;
}

/// Probe U (fault 2): `Outbox.open` checked only the names of our stores. A database of the same
/// name that other code laid out otherwise was used as ours: with `events` given a key generator,
/// every claim added a record instead of updating it (3 saves made 45 uploads and 45 records stuck
/// `processing`); with an index missing, saves resolved and every read failed for good, and an
/// older version's database missing one was upgraded into that state. Now such a database is
/// refused, saying why, and left as it was (its version, its records).
#[wasm_bindgen_test]
async fn a_database_of_our_name_laid_out_otherwise_is_refused_and_left_as_it_was() {
    for (odd, version, why) in
        [("v4-keygen", 4.0, "\"events\" store is keyed otherwise"), ("v3-no-index", 3.0, "\"entries\" store has no \"byUserDate\" index")]
    {
        let db = fresh_db(&format!("schema-odd-{odd}"));
        wasm_bindgen_futures::JsFuture::from(create_odd_db(&db, odd)).await.unwrap();
        let before = schema(&db).await;
        let c = json(r#"{"endpoint": "/api/v1/progress", "log": "off", "persist": false}"#);
        set(&c, "dbName", &s(&db));
        let refused = match Outbox::open(c).await {
            Ok(_) => panic!("{odd}: Outbox.open accepted a database laid out otherwise"),
            Err(e) => e,
        };
        assert_eq!(get(&refused, "code").as_string().as_deref(), Some("STORAGE"), "{odd}: {}", message(&refused));
        let text = message(&refused);
        assert!(text.contains("not created by progress-outbox") && text.contains(why), "{odd}: {text}");
        let after = schema(&db).await;
        assert_eq!(num(&after, "version"), version, "{odd}: its version is kept");
        assert_eq!(js_sys::JSON::stringify(&after).unwrap(), js_sys::JSON::stringify(&before).unwrap(), "{odd}: its stores and indexes are kept");
        assert_eq!(raw(&db, "entries").await.len(), 1, "{odd}: its records are kept");
        finish(&db, &[]).await;
    }
}
