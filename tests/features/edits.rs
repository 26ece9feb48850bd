//! Edits and deletes (CONTRACT §1 "Edits and deletes", §2): the fold rule (nothing sent yet:
//! one upload with the latest values, or nothing at all), the queue rule (PUT/DELETE of the
//! backend id with their own keys; a delete hides the entry at once as a tombstone), 404
//! completing a delete, UNKNOWN_ENTRY, update validation by the entry's metric, and
//! `entries({ userId, metric, from, to, limit })`.

use wasm_bindgen::JsValue;
use wasm_bindgen_test::wasm_bindgen_test;

use crate::support::*;

/// 2026-01-01T00:00:00Z.
const BASE: f64 = 1_767_225_600_000.0;
const DAY: f64 = 86_400_000.0;

fn iso(ms: f64) -> String {
    js_sys::Date::new(&n(ms)).to_iso_string().into()
}

fn ids(list: &[JsValue]) -> Vec<String> {
    list.iter().map(|e| string(e, "id")).collect()
}

#[wasm_bindgen_test]
async fn an_update_before_any_request_folds_into_the_create() {
    let db = fresh_db("fold-update");
    let srv = Server::new("", "");
    let o = Ob::open(&db, "{}").await;
    let e = o.save("weight", 80.0, &format!(r#"{{"userId": "u1", "date": {BASE}}}"#)).await;
    let id = string(&e, "id");
    o.update(&id, r#"{"quantity": 81}"#).await;
    let last = o.update(&id, &format!(r#"{{"quantity": 82.5, "date": {}}}"#, BASE + DAY)).await;
    assert_eq!((num(&last, "quantity"), num(&last, "date")), (82.5, BASE + DAY));
    let evs = o.events_of("u1", &id).await;
    assert_eq!(evs.len(), 1, "the edits went into the unsent create: {}", evs.iter().map(show).collect::<Vec<_>>().join(", "));
    assert_eq!(string(&evs[0], "operation"), "create");
    let meta = get(&evs[0], "metadata");
    assert_eq!((num(&meta, "quantity"), num(&meta, "date")), (82.5, BASE + DAY));
    assert!(srv.requests().is_empty());

    o.start("u1");
    o.drained("u1", Some(1), 3000).await;
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 1, "one request: the create with the latest values");
    assert_eq!(string(&reqs[0], "method"), "POST");
    let body = get(&reqs[0], "body");
    assert_eq!((num(&body, "quantity"), string(&body, "date")), (82.5, iso(BASE + DAY)));
    assert_eq!(string(&reqs[0], "key"), string(&evs[0], "id"));
    let stored = o.entries_of("u1").await.remove(0);
    assert_eq!((num(&stored, "quantity"), string(&stored, "backendId")), (82.5, "srv-1".to_owned()));
    finish(&db, &[&o]).await;
}

#[wasm_bindgen_test]
async fn a_delete_before_any_request_removes_entry_and_events_and_sends_nothing() {
    let db = fresh_db("fold-delete");
    let srv = Server::new("", "");
    let o = Ob::open(&db, "{}").await;
    let keep = o.save("mood", 6.0, r#"{"userId": "u1"}"#).await;
    let a = o.save("steps", 100.0, r#"{"userId": "u1"}"#).await;
    let b = o.save("steps", 200.0, r#"{"userId": "u1"}"#).await;
    o.update(&string(&b, "id"), r#"{"quantity": 250}"#).await;
    o.delete(&string(&a, "id")).await;
    o.delete(&string(&b, "id")).await;
    assert_eq!(ids(&o.entries_of("u1").await), vec![string(&keep, "id")]);
    let evs = o.events("u1").await;
    assert_eq!(evs.len(), 1, "only the kept entry's create is left");
    assert_eq!(string(&evs[0], "entityId"), string(&keep, "id"));
    assert!(raw(&db, "tombstones").await.is_empty(), "nothing of them ever left: no tombstone");
    assert_eq!(raw(&db, "entries").await.len(), 1);

    o.start("u1");
    o.drained("u1", Some(1), 3000).await;
    o.process_now().await;
    let reqs = srv.requests();
    assert_eq!(reqs.len(), 1, "only the kept entry was sent");
    assert_eq!(string(&get(&reqs[0], "body"), "localId"), string(&keep, "id"));
    finish(&db, &[&o]).await;
}

#[wasm_bindgen_test]
async fn after_sync_an_update_is_a_put_and_a_delete_is_a_delete_each_with_its_own_key() {
    let db = fresh_db("queue");
    // DELETEs wait for the test's go, so the tombstone can be seen.
    let srv = Server::new("(req) => req.method === 'DELETE' ? { hold: 'delete' } : undefined", "");
    let o = Ob::open(&db, "{}").await;
    o.start("u1");
    let e = o.save("heartRate", 60.0, &format!(r#"{{"date": {BASE}}}"#)).await;
    let id = string(&e, "id");
    o.drained("u1", Some(1), 3000).await;
    let backend = string(&o.entries_of("u1").await[0], "backendId");
    let create_key = string(&o.events_of("u1", &id).await[0], "id");

    let updated = o.update(&id, r#"{"quantity": 64}"#).await;
    assert_eq!(num(&updated, "quantity"), 64.0);
    assert_eq!(string(&updated, "backendId"), backend);
    let evs = o.events_of("u1", &id).await;
    assert_eq!(evs.len(), 2);
    let update_ev = evs[1].clone();
    assert_eq!(string(&update_ev, "operation"), "update");
    assert_eq!(get(&update_ev, "isNewRecord").as_bool(), Some(false), "the entry had a backend id");
    assert_eq!(num(&get(&update_ev, "metadata"), "quantity"), 64.0);
    o.drained("u1", Some(2), 3000).await;

    let puts = srv.of("PUT");
    assert_eq!(puts.len(), 1);
    let put = &puts[0];
    assert!(string(put, "path").ends_with(&format!("/api/v1/progress/{backend}")), "{}", string(put, "path"));
    assert_eq!(string(put, "key"), string(&update_ev, "id"));
    assert_ne!(string(put, "key"), create_key);
    assert_eq!(opt_string(put, "contentType").as_deref(), Some("application/json"));
    // The entry's full body, nothing else.
    let body = get(put, "body");
    assert_eq!(keys(&body), ["localId", "userId", "type", "quantity", "unit", "date"]);
    assert_eq!(
        (string(&body, "localId"), string(&body, "userId"), string(&body, "type"), num(&body, "quantity"), string(&body, "unit"), string(&body, "date")),
        (id.clone(), "u1".to_owned(), "heartRate".to_owned(), 64.0, "bpm".to_owned(), iso(BASE))
    );
    assert_eq!(num(&srv.record(&backend), "quantity"), 64.0);

    o.delete(&id).await;
    assert!(o.entries_of("u1").await.is_empty(), "a deleted entry is hidden at once");
    eventually(3000, "the DELETE to be in flight", || async { srv.held("delete") == 1 }).await;
    let tombs = raw(&db, "tombstones").await;
    assert_eq!(ids(&tombs), vec![id.clone()], "kept as a tombstone until the server acknowledges");
    assert_eq!(string(&tombs[0], "backendId"), backend);
    assert!(o.entries_of("u1").await.is_empty());
    assert!(o.entries(json(r#"{"userId": "u1", "metric": "heartRate"}"#)).await.is_empty());
    srv.release("delete");
    o.drained("u1", Some(3), 3000).await;

    let dels = srv.of("DELETE");
    assert_eq!(dels.len(), 1);
    let del = &dels[0];
    assert!(string(del, "path").ends_with(&format!("/api/v1/progress/{backend}")));
    assert!(get(del, "rawBody").is_null() || get(del, "rawBody").as_string().as_deref() == Some(""), "a DELETE has no body: {}", show(&get(del, "rawBody")));
    let delete_ev = o.events_of("u1", &id).await.remove(2);
    assert_eq!(string(&delete_ev, "operation"), "delete");
    assert_eq!(string(del, "key"), string(&delete_ev, "id"));
    assert!(get(&srv.record(&backend), "deleted").as_bool().unwrap());
    assert!(raw(&db, "tombstones").await.is_empty(), "the tombstone goes once the delete is acknowledged");
    assert!(o.entries_of("u1").await.is_empty());
    assert_eq!(srv.requests().len(), 3, "POST, PUT, DELETE and nothing else");
    srv.assert_one_at_a_time();
    finish(&db, &[&o]).await;
}

#[wasm_bindgen_test]
async fn a_404_completes_a_delete() {
    let db = fresh_db("delete-404");
    let srv = Server::new("(req) => req.method === 'DELETE' ? { status: 404, body: { error: 'no such record' } } : undefined", "");
    let o = Ob::open(&db, "{}").await;
    o.start("u1");
    let e = o.save("bodyFat", 20.0, "{}").await;
    let id = string(&e, "id");
    o.drained("u1", Some(1), 3000).await;
    o.delete(&id).await;
    o.drained("u1", Some(2), 3000).await;
    let ev = o.events_of("u1", &id).await.remove(1);
    assert_eq!(string(&ev, "operation"), "delete");
    assert_eq!(get(&ev, "gaveUp").as_bool(), Some(false));
    assert!(get(&ev, "errorMessage").is_null());
    assert_eq!(num(&ev, "attemptCount"), 0.0);
    assert!(raw(&db, "tombstones").await.is_empty());
    assert_eq!(srv.count("DELETE", ""), 1, "not retried");
    let st = o.stats("u1").await;
    assert_eq!((num(&st, "failed"), num(&st, "pending"), num(&st, "completed")), (0.0, 0.0, 2.0));
    finish(&db, &[&o]).await;
}

async fn snapshot(db: &str) -> String {
    let mut parts = Vec::new();
    for store in ["entries", "events", "tombstones"] {
        let mut rows: Vec<String> = raw(db, store).await.iter().map(show).collect();
        rows.sort();
        parts.push(rows.join("\n"));
    }
    parts.join("\n--\n")
}

#[wasm_bindgen_test]
async fn unknown_and_deleted_entries_are_refused_with_unknown_entry_and_nothing_changes() {
    let db = fresh_db("unknown-entry");
    let srv = Server::new("(req) => req.method === 'DELETE' ? { hold: 'delete' } : undefined", "");
    let o = Ob::open(&db, "{}").await;
    o.start("u1");
    let synced = o.save("weight", 70.0, "{}").await;
    o.drained("u1", Some(1), 3000).await;
    o.stop();
    let never_sent = o.save("weight", 71.0, r#"{"userId": "u1"}"#).await;
    o.delete(&string(&never_sent, "id")).await;
    o.start("u1");
    o.delete(&string(&synced, "id")).await;
    eventually(3000, "the DELETE to be in flight", || async { srv.held("delete") == 1 }).await;

    let before = snapshot(&db).await;
    for id in ["no-such-entry".to_owned(), string(&never_sent, "id"), string(&synced, "id")] {
        let msg = expect_error(o.call("update", &[s(&id), json(r#"{"quantity": 72}"#)]).await, "Error", "UNKNOWN_ENTRY", &format!("update({id})"));
        assert!(msg.contains(&id), "the message names the id: {msg}");
        expect_error(o.call("delete", &[s(&id)]).await, "Error", "UNKNOWN_ENTRY", &format!("delete({id})"));
    }
    assert_eq!(snapshot(&db).await, before, "a refused update or delete changed storage");
    srv.release("delete");
    o.drained("u1", Some(2), 3000).await;
    expect_error(o.call("delete", &[s(&string(&synced, "id"))]).await, "Error", "UNKNOWN_ENTRY", "delete after the delete synced");
    assert_eq!(srv.requests().len(), 2, "POST and DELETE of the synced entry only");
    finish(&db, &[&o]).await;
}

#[wasm_bindgen_test]
async fn updates_are_validated_by_the_entrys_metric_and_refusals_change_nothing() {
    let db = fresh_db("update-validation");
    let _srv = Server::new("", "");
    let o = Ob::open(&db, "{}").await;
    let mk = |m: &'static str, q: f64| (m, q);
    let mut saved = Vec::new();
    for (m, q) in [mk("steps", 100.0), mk("mood", 5.0), mk("weight", 70.0), mk("heartRate", 60.0), mk("height", 170.0), mk("bodyFat", 20.0)] {
        saved.push((m, string(&o.save(m, q, &format!(r#"{{"userId": "u1", "date": {BASE}}}"#)).await, "id")));
    }
    let id_of = |m: &str| saved.iter().find(|(k, _)| *k == m).unwrap().1.clone();
    let before = snapshot(&db).await;
    let future = now() + DAY + 60_000.0;
    let range = [
        ("steps", "1.5"),
        ("steps", "200001"),
        ("steps", "-1"),
        ("mood", "0"),
        ("mood", "11"),
        ("mood", "7.5"),
        ("weight", "0"),
        ("weight", "635.5"),
        ("weight", "-70"),
        ("heartRate", "19"),
        ("heartRate", "60.5"),
        ("height", "29"),
        ("bodyFat", "76"),
    ];
    for (m, q) in range {
        let msg = expect_error(
            o.call("update", &[s(&id_of(m)), json(&format!(r#"{{"quantity": {q}}}"#))]).await,
            "RangeError",
            "OUT_OF_RANGE",
            &format!("update {m} to {q}"),
        );
        assert!(msg.contains(m), "the message names the entry's metric: {msg}");
    }
    let nan = json("{}");
    set(&nan, "quantity", &n(f64::NAN));
    expect_error(o.call("update", &[s(&id_of("weight")), nan]).await, "RangeError", "OUT_OF_RANGE", "update to NaN");
    for (changes, class, code) in [
        (json("{}"), "RangeError", "OUT_OF_RANGE"),
        (json(&format!(r#"{{"date": {future}}}"#)), "RangeError", "OUT_OF_RANGE"),
        (json(r#"{"date": -2208988800001}"#), "RangeError", "OUT_OF_RANGE"),
        (json(r#"{"quantity": "80"}"#), "TypeError", "INVALID_TYPE"),
        (json(r#"{"date": "2026-01-02"}"#), "TypeError", "INVALID_TYPE"),
        (json(r#"{"qty": 80}"#), "TypeError", "INVALID_TYPE"),
        (json(r#"{"quantity": 80, "type": "steps"}"#), "TypeError", "INVALID_TYPE"),
        (JsValue::UNDEFINED, "TypeError", "INVALID_TYPE"),
        (s("80"), "TypeError", "INVALID_TYPE"),
    ] {
        expect_error(o.call("update", &[s(&id_of("weight")), changes.clone()]).await, class, code, &format!("update(weight, {})", show(&changes)));
    }
    expect_error(o.call("update", &[n(5.0), json(r#"{"quantity": 80}"#)]).await, "TypeError", "INVALID_TYPE", "update(5)");
    expect_error(o.call("update", &[s(""), json(r#"{"quantity": 80}"#)]).await, "RangeError", "OUT_OF_RANGE", "update('')");
    expect_error(o.call("delete", &[JsValue::UNDEFINED]).await, "TypeError", "INVALID_TYPE", "delete()");
    assert_eq!(snapshot(&db).await, before, "a refused update changed storage");

    // What each metric's rule allows (1.5 is a weight, not a step count).
    for (m, q) in [("steps", 200_000.0), ("mood", 10.0), ("weight", 1.5), ("heartRate", 20.0), ("height", 300.0), ("bodyFat", 1.0)] {
        let e = o.update(&id_of(m), &format!(r#"{{"quantity": {q}}}"#)).await;
        assert_eq!(num(&e, "quantity"), q, "{m}");
        assert_eq!(num(&e, "date"), BASE, "an update of the quantity keeps the date");
    }
    let d = json("{}");
    set(&d, "date", &date(BASE + 2.0 * DAY));
    let e = o.ok("update", &[s(&id_of("steps")), d]).await;
    assert_eq!((num(&e, "quantity"), num(&e, "date")), (200_000.0, BASE + 2.0 * DAY), "an update of the date keeps the quantity");
    finish(&db, &[&o]).await;
}

#[wasm_bindgen_test]
async fn entries_filter_by_user_metric_and_inclusive_dates_newest_first_with_a_limit() {
    let db = fresh_db("entries-query");
    let _srv = Server::new("", "");
    let o = Ob::open(&db, "{}").await;
    let mut by_name = std::collections::HashMap::new();
    for (name, user, metric, q, day) in [
        ("w1", "u1", "weight", 70.0, 1.0),
        ("s1", "u1", "steps", 1000.0, 2.0),
        ("w2", "u1", "weight", 71.0, 3.0),
        ("s2", "u1", "steps", 2000.0, 4.0),
        ("w3", "u1", "weight", 72.0, 5.0),
        ("x1", "u2", "weight", 90.0, 3.0),
        ("m1", "u1", "mood", 4.0, 6.0),
    ] {
        let e = o.save(metric, q, &format!(r#"{{"userId": "{user}", "date": {}}}"#, BASE + day * DAY)).await;
        by_name.insert(string(&e, "id"), name);
    }
    let names = |list: Vec<JsValue>| list.iter().map(|e| by_name[&string(e, "id")]).collect::<Vec<_>>();
    let q = |from: Option<f64>, to: Option<f64>, extra: &str| {
        let v = json(&format!(r#"{{"userId": "u1"{extra}}}"#));
        if let Some(f) = from {
            set(&v, "from", &n(f));
        }
        if let Some(t) = to {
            set(&v, "to", &n(t));
        }
        v
    };
    assert_eq!(names(o.entries_of("u1").await), ["m1", "w3", "s2", "w2", "s1", "w1"]);
    assert_eq!(names(o.entries_of("u2").await), ["x1"]);
    assert_eq!(names(o.entries(q(None, None, r#", "metric": "weight""#)).await), ["w3", "w2", "w1"]);
    // Inclusive bounds, milliseconds or Date.
    assert_eq!(names(o.entries(q(Some(BASE + 2.0 * DAY), Some(BASE + 4.0 * DAY), "")).await), ["s2", "w2", "s1"]);
    let dates = json(r#"{"userId": "u1"}"#);
    set(&dates, "from", &date(BASE + 2.0 * DAY));
    set(&dates, "to", &date(BASE + 4.0 * DAY));
    assert_eq!(names(o.entries(dates).await), ["s2", "w2", "s1"]);
    assert_eq!(names(o.entries(q(Some(BASE + 2.0 * DAY + 1.0), Some(BASE + 4.0 * DAY - 1.0), "")).await), ["w2"]);
    assert_eq!(names(o.entries(q(Some(BASE + 2.0 * DAY), Some(BASE + 2.0 * DAY), r#", "metric": "steps""#)).await), ["s1"]);
    assert_eq!(names(o.entries(q(Some(BASE + 3.0 * DAY), None, r#", "metric": "weight""#)).await), ["w3", "w2"]);
    assert_eq!(names(o.entries(q(None, Some(BASE + 3.0 * DAY), "")).await), ["w2", "s1", "w1"]);
    assert!(o.entries(q(Some(BASE + 6.0 * DAY + 1.0), None, "")).await.is_empty());
    // Limit: the newest ones.
    assert_eq!(names(o.entries(q(None, None, r#", "limit": 2"#)).await), ["m1", "w3"]);
    assert_eq!(names(o.entries(q(None, Some(BASE + 4.0 * DAY), r#", "metric": "weight", "limit": 1"#)).await), ["w2"]);
    assert_eq!(names(o.entries(q(None, None, r#", "metric": "mood", "limit": 10"#)).await), ["m1"]);
    // The current user by default.
    o.stop();
    o.start("u2");
    assert_eq!(names(o.entries(JsValue::UNDEFINED).await), ["x1"]);
    assert_eq!(names(o.entries(json(r#"{"metric": "weight"}"#)).await), ["x1"]);
    o.stop();
    // Refusals.
    for (query, class, code) in [
        (json(r#"{"userId": "u1", "metric": "bmi"}"#), "RangeError", "OUT_OF_RANGE"),
        (json(r#"{"userId": "u1", "from": 5, "to": 4}"#), "RangeError", "OUT_OF_RANGE"),
        (json(r#"{"userId": "u1", "limit": 0}"#), "RangeError", "OUT_OF_RANGE"),
        (json(r#"{"userId": "u1", "limit": 1.5}"#), "RangeError", "OUT_OF_RANGE"),
        (json(r#"{"userId": "u1", "from": "yesterday"}"#), "TypeError", "INVALID_TYPE"),
        (json(r#"{"user": "u1"}"#), "TypeError", "INVALID_TYPE"),
        (json(r#"{"userId": "u1", "type": "weight"}"#), "TypeError", "INVALID_TYPE"),
    ] {
        expect_error(o.call("entries", std::slice::from_ref(&query)).await, class, code, &format!("entries({})", show(&query)));
    }
    // A deleted entry is never listed.
    let w2 = by_name.iter().find(|(_, v)| **v == "w2").unwrap().0.clone();
    o.delete(&w2).await;
    assert_eq!(names(o.entries(q(None, None, r#", "metric": "weight""#)).await), ["w3", "w1"]);
    assert_eq!(names(o.entries(q(Some(BASE + 2.0 * DAY), Some(BASE + 4.0 * DAY), "")).await), ["s2", "s1"]);
    finish(&db, &[&o]).await;
}

/// A probe found: an entry's next event, let go when the one before it completed, waited for the
/// next processing tick: a chain of N edits took N processing intervals to sync. Now the end of
/// one wakes the processor for the next.
#[wasm_bindgen_test]
async fn a_chain_of_edits_syncs_without_waiting_a_tick_per_edit() {
    let db = fresh_db("edit-chain");
    let srv = Server::new("", "");
    let o = Ob::open(&db, r#"{"processingIntervalMs": 600000}"#).await;
    o.start("u1");
    let id = string(&o.save("weight", 80.0, "{}").await, "id");
    o.process_now().await;
    o.drained("u1", Some(1), 5_000).await;
    for q in [81.0, 82.0, 83.0, 84.0] {
        o.update(&id, &format!(r#"{{"quantity": {q}}}"#)).await;
    }
    // One tick is 10 minutes: every edit goes within seconds, in order.
    o.drained("u1", Some(5), 5_000).await;
    let puts: Vec<f64> = srv.requests().iter().filter(|r| string(r, "method") == "PUT").map(|r| num(&get(r, "body"), "quantity")).collect();
    assert_eq!(puts, [81.0, 82.0, 83.0, 84.0]);
    finish(&db, &[&o]).await;
}
