//! Faults a review found, each reproduced: a numeric backend id used in later URLs, a refused
//! edit that blocked its entry for good, claimed-but-unsent events taken for stale (and reset
//! while still queued for upload), a polyfill `Response` whose `text()` is not a promise, and a
//! token echoed across the end of the body excerpt.

use wasm_bindgen::prelude::*;
use wasm_bindgen_test::wasm_bindgen_test;

use crate::support::*;

#[wasm_bindgen(inline_js = r#"
export function polyfillFetch(state) {
  globalThis.fetch = () => {
    state.n = (state.n || 0) + 1;
    // A response-like object of a fetch polyfill: no `instanceof Response`, a `text()` that
    // returns the text itself instead of a promise, a `headers.get` of its own.
    return Promise.resolve({ status: 201, type: "basic", headers: { get: () => null }, text: () => JSON.stringify({ id: "p-" + state.n }) });
  };
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = polyfillFetch)]
    fn polyfill_fetch(state: &JsValue);
}

#[wasm_bindgen_test]
async fn a_numeric_backend_id_is_kept_exactly_for_later_urls() {
    let db = fresh_db("numeric-id");
    let srv = Server::new(r#"(req) => req.method === "POST" ? { status: 201, body: { id: 1764000000123 } } : undefined"#, "");
    let o = Ob::open(&db, "{}").await;
    let e = o.save("weight", 80.0, r#"{"userId": "u1"}"#).await;
    let id = string(&e, "id");
    o.start("u1");
    o.drained("u1", Some(1), 3000).await;
    let stored = o.entries_of("u1").await.remove(0);
    assert_eq!(string(&stored, "backendId"), "1764000000123", "not 1764000000123.000064");
    o.update(&id, r#"{"quantity": 81}"#).await;
    eventually(3000, "the PUT", || async { srv.count("PUT", "") == 1 }).await;
    let put = srv.of("PUT").remove(0);
    assert!(string(&put, "path").ends_with("/progress/1764000000123"), "PUT went to {}", string(&put, "path"));
    finish(&db, &[&o]).await;
}

#[wasm_bindgen_test]
async fn a_correction_of_a_refused_update_goes_at_once_and_replaces_it() {
    let db = fresh_db("refused-update");
    let srv = Server::new("", "");
    let o = Ob::open(&db, "{}").await;
    let e = o.save("mood", 6.0, r#"{"userId": "u1"}"#).await;
    let id = string(&e, "id");
    o.start("u1");
    o.drained("u1", Some(1), 3000).await;
    // The first correction is refused by the server (it will never accept it).
    srv.set_script(r#"(req) => req.method === "PUT" && req.body.quantity === 9 ? { status: 422, body: { error: "mood 9 is not allowed here" } } : undefined"#);
    o.update(&id, r#"{"quantity": 9}"#).await;
    eventually(3000, "the refused update gave up", || async {
        o.events_of("u1", &id).await.iter().any(|ev| string(ev, "operation") == "update" && get(ev, "gaveUp").as_bool() == Some(true))
    })
    .await;
    // The user fixes it: the new update is not held behind the refused one, and replaces it.
    o.update(&id, r#"{"quantity": 7}"#).await;
    o.drained("u1", Some(2), 3000).await;
    let evs = o.events_of("u1", &id).await;
    let ops: Vec<(String, String)> = evs.iter().map(|ev| (string(ev, "operation"), string(ev, "status"))).collect();
    assert_eq!(ops, [("create".into(), "completed".into()), ("update".into(), "completed".into())]);
    let rec = srv.live().remove(0);
    assert_eq!(num(&rec, "quantity"), 7.0, "the server has the correction");
    assert_eq!(num(&o.stats("u1").await, "gaveUp"), 0.0);
    finish(&db, &[&o]).await;
}

#[wasm_bindgen_test]
async fn a_delete_after_a_refused_update_still_reaches_the_server() {
    let db = fresh_db("refused-then-delete");
    let srv = Server::new("", "");
    let o = Ob::open(&db, "{}").await;
    let e = o.save("steps", 1000.0, r#"{"userId": "u1"}"#).await;
    let id = string(&e, "id");
    o.start("u1");
    o.drained("u1", Some(1), 3000).await;
    srv.set_script(r#"(req) => req.method === "PUT" ? { status: 422, body: { error: "no" } } : undefined"#);
    o.update(&id, r#"{"quantity": 2000}"#).await;
    eventually(3000, "the refused update gave up", || async { num(&o.stats("u1").await, "gaveUp") == 1.0 }).await;
    o.delete(&id).await;
    eventually(3000, "the DELETE", || async { srv.count("DELETE", "") == 1 }).await;
    o.drained("u1", Some(2), 3000).await;
    assert!(srv.live().is_empty(), "the record is deleted on the server");
    assert!(o.entries_of("u1").await.is_empty());
    finish(&db, &[&o]).await;
}

#[wasm_bindgen_test]
async fn claimed_events_waiting_for_their_upload_are_never_stale_nor_reset() {
    let db = fresh_db("queued-not-stale");
    let srv = Server::new(r#"() => ({ hold: "all" })"#, "");
    let o = Ob::open(&db, r#"{"maxConcurrent": 1, "batchSize": 5}"#).await;
    for q in 1..=5 {
        o.save("mood", q as f64, r#"{"userId": "u1"}"#).await;
    }
    o.start("u1");
    eventually(3000, "one request held", || async { srv.held("all") == 1 }).await;
    let s = o.stats("u1").await;
    assert_eq!(num(&s, "processing"), 5.0, "all five claimed, one sending");
    let stale = array(&o.ok("staleEvents", &[s_("u1")]).await);
    assert!(stale.is_empty(), "claimed and queued here is not stale: {}", stale.iter().map(show).collect::<Vec<_>>().join(", "));
    let ids: js_sys::Array = o.events("u1").await.iter().map(|ev| get(ev, "id")).collect();
    let reset = o.ok("resetForRetry", &[ids.into()]).await;
    assert_eq!(reset.as_f64(), Some(0.0), "nothing to reset");
    // Let them through: each key once.
    for _ in 0..5 {
        eventually(3000, "a held request", || async { srv.held("all") >= 1 }).await;
        srv.release("all");
    }
    o.drained("u1", Some(5), 5000).await;
    let mut keys: Vec<String> = srv.of("POST").iter().map(|r| string(r, "key")).collect();
    keys.sort();
    let n = keys.len();
    keys.dedup();
    assert_eq!((n, keys.len()), (5, 5), "five POSTs, five keys");
    finish(&db, &[&o]).await;
}

fn s_(v: &str) -> JsValue {
    JsValue::from_str(v)
}

#[wasm_bindgen_test]
async fn a_polyfill_response_whose_text_is_not_a_promise_completes_the_event() {
    let db = fresh_db("polyfill");
    let state = json("{}");
    polyfill_fetch(&state);
    let o = Ob::open(&db, "{}").await;
    o.save("weight", 70.0, r#"{"userId": "u1"}"#).await;
    o.start("u1");
    o.drained("u1", Some(1), 3000).await;
    assert_eq!(string(&o.entries_of("u1").await.remove(0), "backendId"), "p-1");
    finish(&db, &[&o]).await;
}

#[wasm_bindgen_test]
async fn a_token_echoed_across_the_end_of_the_excerpt_is_never_stored() {
    let db = fresh_db("token-straddle");
    let token = "tok-ABCDEFGHIJKLMNOP";
    // Spaces (collapsed in the message) then the token, crossing the 500th character of the body.
    let body = format!("{}Bearer {token} was refused", " ".repeat(485));
    let script = format!(r#"() => ({{ status: 503, body: {} }})"#, js_sys::JSON::stringify(&s_(&body)).unwrap().as_string().unwrap());
    let _srv = Server::new(&script, "");
    let o = Ob::open(&db, &format!(r#"{{"token": "{token}"}}"#)).await;
    o.save("weight", 70.0, r#"{"userId": "u1"}"#).await;
    o.start("u1");
    eventually(3000, "a failed answer", || async { num(&o.stats("u1").await, "failed") == 1.0 }).await;
    let ev = o.events("u1").await.remove(0);
    let stored = format!("{} {}", string(&ev, "errorMessage"), string(&o.stats("u1").await, "lastError"));
    assert!(!stored.contains("tok-ABC"), "a piece of the token was stored: {stored}");
    assert!(stored.contains("HTTP 503"), "{stored}");
    finish(&db, &[&o]).await;
}
