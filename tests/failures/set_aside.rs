//! Edits of an entry another version of the app rewrote in a shape this one cannot read, when
//! that version also wrote odd kept copies: stamps that are no time, copies naming another
//! entry, an id of `..`, a copy put back over one holding the id (by a claim or by `entries()`),
//! an entry restored without its id or put back readable without it, a kept copy of an entry
//! deleted since, a wrapper whose own key names another entry. Each failed on the code before
//! its fix (the edit given up at once, sent to another entry's record or outside the endpoint, its
//! id destroyed, waiting for good, the deleted entry brought back, another entry's copy deleted).

use wasm_bindgen::prelude::*;
use wasm_bindgen_test::wasm_bindgen_test;

use crate::support::*;

const CFG: &str = r#"{"processingIntervalMs": 100, "requestTimeoutMs": 2000, "backoffMs": [100]}"#;

/// `n` entries whose creates completed (backend ids srv-1..srv-n), each with an update queued
/// (quantity 71), the outbox stopped. Returns the stub, the outbox and the entry ids.
async fn setup(db: &str, n: usize) -> (JsValue, progress_outbox::Outbox, Vec<String>) {
    let list: Vec<String> = (1..=n).map(|i| format!(r#"{{"status": 201, "body": {{"id": "srv-{i}"}}}}"#)).collect();
    let stub = stub_fetch(&json(&format!("[{}]", list.join(","))), &json(r#"{"status": 200}"#));
    let outbox = open(db, CFG).await;
    outbox.start(JsValue::from_str("u1")).unwrap();
    let mut ids = Vec::new();
    for i in 1..=n {
        ids.push(string(&save_for(&outbox, 69.0 + i as f64).await, "id"));
        eventually(8_000, "the create uploads", || async { num(&stats(&outbox, "u1").await, "completed") == i as f64 }).await;
    }
    outbox.stop();
    for id in &ids {
        resolves(10_000, "update", outbox.update(JsValue::from_str(id), json(r#"{"quantity": 71}"#))).await;
    }
    (stub, outbox, ids)
}

async fn update_for(outbox: &progress_outbox::Outbox, id: &str) -> JsValue {
    events(outbox, r#"{"userId": "u1"}"#)
        .await
        .into_iter()
        .find(|e| opt_string(e, "operation").as_deref() == Some("update") && opt_string(e, "entityId").as_deref() == Some(id))
        .expect("the update is listed")
}

/// Looked at: waiting with a message, or completed.
async fn looked_at(outbox: &progress_outbox::Outbox, id: &str) {
    eventually(8_000, "the update is looked at", || async {
        let e = update_for(outbox, id).await;
        opt_string(&e, "errorMessage").is_some() || opt_string(&e, "status").as_deref() == Some("completed")
    })
    .await;
}

/// Sets entry `id` aside by hand as another version would (unreadable, no backend id), the kept
/// wrapper's `at` set to `at` (`None`: missing), its record changed by `edit`.
async fn keep_aside(db: &str, id: &str, at: Option<JsValue>, edit: impl Fn(&JsValue)) {
    let raw = ok(raw_get(db, "entries", id)).await;
    set(&raw, "quantity", &JsValue::from_str("seventy"));
    set(&raw, "backendId", &JsValue::NULL);
    edit(&raw);
    let kept = json(r#"{"store": "entries", "userId": "u1", "reason": "written by another version"}"#);
    set(&kept, "key", &JsValue::from_str(id));
    if let Some(at) = at {
        set(&kept, "at", &at);
    }
    set(&kept, "record", &raw);
    ok(raw_put(db, "quarantine", &kept, &JsValue::from_str(&format!("entries:{id}")))).await;
    ok(raw_delete(db, "entries", id)).await;
}

/// Entry `id` kept aside with its backend id srv-1, then put back in place by another version
/// without the id: unreadable (`quantity` a string) or readable.
async fn kept_with_id_then_put_back(db: &str, id: &str, unreadable: bool) {
    let raw = ok(raw_get(db, "entries", id)).await;
    keep_aside(db, id, Some(JsValue::from_f64(js_sys::Date::now())), |r| set(r, "backendId", &JsValue::from_str("srv-1"))).await;
    if unreadable {
        set(&raw, "quantity", &JsValue::from_str("seventy"));
    }
    set(&raw, "backendId", &JsValue::NULL);
    ok(raw_put(db, "entries", &raw, &JsValue::UNDEFINED)).await;
}

fn puts(stub: &JsValue) -> Vec<String> {
    requests(stub).iter().filter(|r| opt_string(r, "method").as_deref() == Some("PUT")).map(|r| string(r, "path")).collect()
}

fn waits(e: &JsValue) -> bool {
    !get(e, "gaveUp").is_truthy() && !get(e, "nextAttemptAt").is_null() && num(e, "requestCount") == 0.0
}

#[wasm_bindgen_test]
async fn a_kept_copy_stamped_with_no_usable_time_starts_its_wait_now() {
    let db = fresh_db("aside-at");
    let (stub, outbox, ids) = setup(&db, 4).await;
    let ats = [Some(JsValue::from_f64(f64::NAN)), Some(JsValue::from_str("yesterday")), None, Some(JsValue::from_f64(f64::NEG_INFINITY))];
    for (id, at) in ids.iter().zip(ats) {
        keep_aside(&db, id, at, |_| {}).await;
    }
    let before = requests(&stub).len();
    outbox.start(JsValue::from_str("u1")).unwrap();
    for id in &ids {
        looked_at(&outbox, id).await;
        let e = update_for(&outbox, id).await;
        assert!(waits(&e), "it waits, never gives up at once: {e:?}");
        let at = get(&ok(raw_get(&db, "quarantine", &format!("entries:{id}"))).await, "at");
        assert!(at.as_f64().is_some_and(|at| at > js_sys::Date::now() - 60_000.0), "stamped now: {at:?}");
    }
    assert_eq!(requests(&stub).len(), before, "nothing sent");
    finish(&db, &[&outbox]).await;
}

#[wasm_bindgen_test]
async fn a_kept_copy_naming_another_entry_never_addresses_this_ones_edit() {
    let db = fresh_db("aside-other");
    let (stub, outbox, ids) = setup(&db, 2).await;
    let now = Some(JsValue::from_f64(js_sys::Date::now()));
    keep_aside(&db, &ids[0], now.clone(), |r| {
        set(r, "id", &JsValue::from_str("some-other-entry"));
        set(r, "backendId", &JsValue::from_str("srv-OTHER"));
    })
    .await;
    keep_aside(&db, &ids[1], now, |r| set(r, "backendId", &JsValue::from_str("../x"))).await;
    outbox.start(JsValue::from_str("u1")).unwrap();
    for id in &ids {
        looked_at(&outbox, id).await;
    }
    let paths = puts(&stub);
    assert!(!paths.iter().any(|p| p.contains("srv-OTHER")), "{paths:?}");
    assert!(waits(&update_for(&outbox, &ids[0]).await));
    // An id with a slash is escaped: it stays inside the endpoint.
    assert!(paths.iter().any(|p| p.ends_with("/progress/..%2Fx")), "{paths:?}");
    finish(&db, &[&outbox]).await;
}

#[wasm_bindgen_test]
async fn a_readable_entry_whose_backend_id_is_dot_dot_is_never_addressed_outside_the_endpoint() {
    let db = fresh_db("aside-dotdot");
    let (stub, outbox, ids) = setup(&db, 1).await;
    let raw = ok(raw_get(&db, "entries", &ids[0])).await;
    set(&raw, "backendId", &JsValue::from_str(".."));
    ok(raw_put(&db, "entries", &raw, &JsValue::UNDEFINED)).await;
    outbox.start(JsValue::from_str("u1")).unwrap();
    looked_at(&outbox, &ids[0]).await;
    assert_eq!(puts(&stub), Vec::<String>::new());
    assert!(waits(&update_for(&outbox, &ids[0]).await));
    finish(&db, &[&outbox]).await;
}

#[wasm_bindgen_test]
async fn setting_an_entry_aside_over_a_kept_copy_keeps_the_backend_id_that_copy_holds() {
    let db = fresh_db("aside-overwrite");
    let (stub, outbox, ids) = setup(&db, 1).await;
    let id = &ids[0];
    // Another version puts a copy back in place, unreadable and without the id.
    kept_with_id_then_put_back(&db, id, true).await;
    outbox.start(JsValue::from_str("u1")).unwrap();
    eventually(8_000, "the update is sent", || async { opt_string(&update_for(&outbox, id).await, "status").as_deref() == Some("completed") }).await;
    assert!(puts(&stub).iter().any(|p| p.ends_with("/srv-1")), "{:?}", puts(&stub));
    let kept = ok(raw_get(&db, "quarantine", &format!("entries:{id}"))).await;
    assert_eq!(opt_string(&get(&kept, "record"), "backendId").as_deref(), Some("srv-1"), "the id carried onto the copy set aside now");
    assert!(ok(raw_get(&db, "entries", id)).await.is_undefined());
    finish(&db, &[&outbox]).await;
}

#[wasm_bindgen_test]
async fn an_entry_restored_without_its_backend_id_lets_its_edit_wait_7_days_then_give_up() {
    let db = fresh_db("aside-restored");
    let (stub, outbox, ids) = setup(&db, 1).await;
    let id = &ids[0];
    let entry = ok(raw_get(&db, "entries", id)).await;
    set(&entry, "quantity", &JsValue::from_str("seventy"));
    set(&entry, "backendId", &JsValue::NULL);
    ok(raw_put(&db, "entries", &entry, &JsValue::UNDEFINED)).await;
    outbox.start(JsValue::from_str("u1")).unwrap();
    let key = format!("entries:{id}");
    eventually(8_000, "set aside", || async { ok(raw_get(&db, "quarantine", &key)).await.is_object() }).await;
    outbox.close();
    // A version that reads it made it readable again, still without its id; it is restored.
    let kept = ok(raw_get(&db, "quarantine", &key)).await;
    set(&get(&kept, "record"), "quantity", &JsValue::from_f64(71.0));
    ok(raw_put(&db, "quarantine", &kept, &JsValue::from_str(&key))).await;
    let again = open(&db, CFG).await;
    again.start(JsValue::from_str("u1")).unwrap();
    eventually(8_000, "restored", || async { ok(raw_get(&db, "entries", id)).await.is_object() }).await;
    looked_at(&again, id).await;
    assert!(waits(&update_for(&again, id).await));
    // No id will come (its create is done): 8 days after the edit was written, it gives up.
    set_clock_offset(8.0 * DAY_MS);
    process_now(&again, 10_000).await;
    eventually(8_000, "the edit gives up", || async { get(&update_for(&again, id).await, "gaveUp").is_truthy() }).await;
    let e = update_for(&again, id).await;
    assert!(string(&e, "errorMessage").contains("none came within 7 days"), "{e:?}");
    assert_eq!(puts(&stub), Vec::<String>::new());
    finish(&db, &[&outbox, &again]).await;
}

#[wasm_bindgen_test]
async fn a_kept_copy_of_an_entry_deleted_since_is_not_restored() {
    let db = fresh_db("aside-zombie");
    let (_stub, outbox, ids) = setup(&db, 1).await;
    let id = &ids[0];
    outbox.start(JsValue::from_str("u1")).unwrap();
    eventually(8_000, "the update uploads", || async { opt_string(&update_for(&outbox, id).await, "status").as_deref() == Some("completed") }).await;
    outbox.stop();
    let entry = ok(raw_get(&db, "entries", id)).await;
    resolves(10_000, "delete", outbox.delete(JsValue::from_str(id))).await;
    // A readable copy of the entry, kept aside before the delete.
    let kept = json(r#"{"store": "entries", "userId": "u1", "reason": "written by another version"}"#);
    set(&kept, "key", &JsValue::from_str(id));
    set(&kept, "at", &JsValue::from_f64(js_sys::Date::now()));
    set(&kept, "record", &entry);
    ok(raw_put(&db, "quarantine", &kept, &JsValue::from_str(&format!("entries:{id}")))).await;
    outbox.close();
    let again = open(&db, CFG).await;
    let listed = array(&ok(again.entries(JsValue::from_str("u1"))).await);
    assert!(!listed.iter().any(|e| opt_string(e, "id").as_deref() == Some(id.as_str())), "the deleted entry is not listed");
    again.start(JsValue::from_str("u1")).unwrap();
    eventually(8_000, "the delete completes", || async { num(&stats(&again, "u1").await, "completed") == 3.0 }).await;
    assert!(ok(raw_get(&db, "entries", id)).await.is_undefined());
    assert!(ok(raw_get(&db, "quarantine", &format!("entries:{id}"))).await.is_undefined(), "the delete forgot the kept copy");
    finish(&db, &[&outbox, &again]).await;
}

#[wasm_bindgen_test]
async fn a_kept_copy_stamped_ahead_is_moved_to_now_under_the_key_it_was_read_under() {
    let db = fresh_db("aside-stray");
    let (_stub, outbox, ids) = setup(&db, 2).await;
    let ahead = Some(JsValue::from_f64(js_sys::Date::now() + DAY_MS));
    keep_aside(&db, &ids[0], ahead.clone(), |_| {}).await;
    keep_aside(&db, &ids[1], ahead, |_| {}).await;
    // The wrappers' own `key` fields: missing, and naming another entry.
    let k0 = format!("entries:{}", ids[0]);
    let w = ok(raw_get(&db, "quarantine", &k0)).await;
    set(&w, "key", &JsValue::UNDEFINED);
    ok(raw_put(&db, "quarantine", &w, &JsValue::from_str(&k0))).await;
    let k1 = format!("entries:{}", ids[1]);
    let w = ok(raw_get(&db, "quarantine", &k1)).await;
    set(&w, "key", &JsValue::from_str("not-this-entry"));
    ok(raw_put(&db, "quarantine", &w, &JsValue::from_str(&k1))).await;
    let before = array(&ok(raw_keys(&db, "quarantine")).await).len();
    outbox.start(JsValue::from_str("u1")).unwrap();
    for id in &ids {
        looked_at(&outbox, id).await;
    }
    assert_eq!(array(&ok(raw_keys(&db, "quarantine")).await).len(), before, "no stray records");
    let now = js_sys::Date::now();
    for k in [&k0, &k1] {
        assert!(num(&ok(raw_get(&db, "quarantine", k)).await, "at") <= now, "{k} moved to now");
    }
    finish(&db, &[&outbox]).await;
}

#[wasm_bindgen_test]
async fn a_readable_entry_without_its_id_is_addressed_by_the_id_a_kept_copy_holds() {
    let db = fresh_db("aside-readable-kept");
    let (stub, outbox, ids) = setup(&db, 1).await;
    let id = &ids[0];
    // Another version put the entry back readable, without its id.
    kept_with_id_then_put_back(&db, id, false).await;
    outbox.start(JsValue::from_str("u1")).unwrap();
    eventually(8_000, "the update is sent", || async { opt_string(&update_for(&outbox, id).await, "status").as_deref() == Some("completed") }).await;
    assert_eq!(puts(&stub).len(), 1);
    assert!(puts(&stub)[0].ends_with("/srv-1"), "{:?}", puts(&stub));
    // The entry got its id back: its next edit addresses the same record (never a second create).
    assert_eq!(opt_string(&ok(raw_get(&db, "entries", id)).await, "backendId").as_deref(), Some("srv-1"));
    resolves(10_000, "update", outbox.update(JsValue::from_str(id), json(r#"{"quantity": 72}"#))).await;
    eventually(8_000, "the next edit is sent", || async { puts(&stub).len() == 2 }).await;
    assert!(puts(&stub)[1].ends_with("/srv-1"), "{:?}", puts(&stub));
    assert_eq!(requests(&stub).iter().filter(|r| opt_string(r, "method").as_deref() == Some("POST")).count(), 1, "one create, ever");
    finish(&db, &[&outbox]).await;
}

#[wasm_bindgen_test]
async fn entries_setting_an_entry_aside_over_a_kept_copy_keeps_the_backend_id_that_copy_holds() {
    let db = fresh_db("aside-listing");
    let (_stub, outbox, ids) = setup(&db, 1).await;
    let id = &ids[0];
    kept_with_id_then_put_back(&db, id, true).await;
    // Listing the entries comes across the unreadable one and sets it aside over the kept copy.
    resolves(10_000, "entries", outbox.entries(JsValue::from_str("u1"))).await;
    eventually(5_000, "set aside", || async { ok(raw_get(&db, "entries", id)).await.is_undefined() }).await;
    let kept = ok(raw_get(&db, "quarantine", &format!("entries:{id}"))).await;
    assert_eq!(get(&get(&kept, "record"), "quantity").as_string().as_deref(), Some("seventy"), "the newer copy is kept");
    assert_eq!(opt_string(&get(&kept, "record"), "backendId").as_deref(), Some("srv-1"), "with the id the older one held");
    finish(&db, &[&outbox]).await;
}

#[wasm_bindgen_test]
async fn restoring_a_readable_copy_goes_by_the_key_it_is_kept_under_whatever_its_wrapper_says() {
    let db = fresh_db("aside-restore-key");
    let (_stub, outbox, ids) = setup(&db, 3).await;
    outbox.close();
    let now = Some(JsValue::from_f64(js_sys::Date::now()));
    for id in &ids[..2] {
        keep_aside(&db, id, now.clone(), |_| {}).await;
    }
    // A readable copy of the third entry kept under another key: it is not that key's record.
    let third = ok(raw_get(&db, "entries", &ids[2])).await;
    let odd = json(&String::from(js_sys::JSON::stringify(&third).unwrap()));
    set(&odd, "quantity", &JsValue::from_f64(99.0));
    let wrapper = json(r#"{"store": "entries", "key": "elsewhere", "userId": "u1", "reason": "written by another version"}"#);
    set(&wrapper, "record", &odd);
    set(&wrapper, "at", &JsValue::from_f64(js_sys::Date::now()));
    ok(raw_put(&db, "quarantine", &wrapper, &JsValue::from_str("entries:elsewhere"))).await;
    // The first becomes readable again, its wrapper's `key` naming the second entry.
    let (ka, kb) = (format!("entries:{}", ids[0]), format!("entries:{}", ids[1]));
    let w = ok(raw_get(&db, "quarantine", &ka)).await;
    set(&get(&w, "record"), "quantity", &JsValue::from_f64(70.0));
    set(&w, "key", &JsValue::from_str(&ids[1]));
    ok(raw_put(&db, "quarantine", &w, &JsValue::from_str(&ka))).await;
    let again = open(&db, CFG).await;
    eventually(5_000, "restored", || async { ok(raw_get(&db, "entries", &ids[0])).await.is_object() }).await;
    assert!(ok(raw_get(&db, "quarantine", &ka)).await.is_undefined(), "its own kept copy goes");
    assert!(ok(raw_get(&db, "quarantine", &kb)).await.is_object(), "the other entry's kept copy stays");
    assert_eq!(num(&ok(raw_get(&db, "entries", &ids[2])).await, "quantity"), num(&third, "quantity"), "a copy kept under another key replaces nothing");
    assert!(ok(raw_get(&db, "quarantine", "entries:elsewhere")).await.is_object());
    finish(&db, &[&outbox, &again]).await;
}
