//! Faults a review found, each reproduced: a numeric backend id used in later URLs, a refused
//! edit that blocked its entry for good, claimed-but-unsent events taken for stale (and reset
//! while still queued for upload), a polyfill `Response` whose `text()` is not a promise, and a
//! token echoed across the end of the body excerpt. Then what a hostile probe of the package
//! found: arguments and the current user read after the call had returned (a save made for u1
//! stored as u3's), lone surrogates and `null` options quietly normalised, an endpoint fetch can
//! never use accepted at open, `subscribe` after `close`, and a `processNow()` that never resolved
//! while saves kept coming. A second probe: an endpoint with a query (the id glued into it, a
//! DELETE sent to the collection taken for done), options that are inherited or getters ignored
//! (saved for the wrong user), URLs with credentials and tokens no header can carry accepted at
//! open, two users' Web Locks that collided, a Date with a `Symbol.toStringTag` refused, and a
//! fractional `from` rounded down. A third: a batch item answered 401 never got a fresh token
//! (counted, then given up), a success whose body was cut off counted as a failed answer, a token
//! function's error quoting the token stored, and an offline context probing with 3 requests a
//! second. A fourth: an answer that arrived while the page was hung, thrown away for the deadline
//! that fired late (the event sent again). A fifth: edits made while a create was in flight, then
//! the create refused: the update waited for a backend id that would never come (retried every
//! 60 s, forever), the delete stayed pending; device and server differed for good. And edits of
//! creates claimed but not sent yet (waiting for a free upload slot): the create went anyway, then
//! the edit as its own request (a deleted entry's values left the device). A sixth: one hung
//! request held back every later save until it timed out, with upload slots free.

use progress_outbox::Outbox;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::wasm_bindgen_test;

use crate::support::*;

#[wasm_bindgen(module = "/tests/features/harness.js")]
extern "C" {
    #[wasm_bindgen(js_name = hostileArrays)]
    fn hostile_arrays() -> js_sys::Array;
    #[wasm_bindgen(js_name = longStrings)]
    fn long_strings() -> js_sys::Array;
    #[wasm_bindgen(js_name = hiddenTypos)]
    fn hidden_typos() -> js_sys::Array;
    #[wasm_bindgen(js_name = wasmMemoryBytes)]
    fn wasm_memory_bytes(memory: &JsValue) -> f64;
}

#[wasm_bindgen(module = "/tests/features/harness.js")]
extern "C" {
    #[wasm_bindgen(js_name = polyfillFetch)]
    fn polyfill_fetch(state: &JsValue);
}

#[wasm_bindgen(module = "/tests/features/harness.js")]
extern "C" {
    #[wasm_bindgen(js_name = oddOptionObjects)]
    fn odd_option_objects() -> js_sys::Array;
    fn busy(ms: f64);
    #[wasm_bindgen(js_name = taggedDate)]
    fn tagged_date(ms: f64) -> JsValue;
    #[wasm_bindgen(js_name = callsInOneTurn)]
    fn calls_in_one_turn(ob: &JsValue) -> js_sys::Promise;
    #[wasm_bindgen(js_name = processNowUnderLoad)]
    fn process_now_under_load(ob: &JsValue, ms: u32) -> js_sys::Promise;
}

#[wasm_bindgen_test]
async fn arguments_and_the_user_are_read_when_the_call_is_made() {
    let db = fresh_db("read-at-call");
    let _srv = Server::new(r#"() => ({ hang: true })"#, "");
    let o = Ob::open(&db, "{}").await;
    o.save("weight", 60.0, r#"{"userId": "u3"}"#).await;
    let results = array(&wasm_bindgen_futures::JsFuture::from(calls_in_one_turn(&o.js)).await.unwrap());
    let value = |i: usize| {
        assert_eq!(string(&results[i], "status"), "fulfilled", "call {i}: {}", show(&results[i]));
        get(&results[i], "value")
    };
    assert_eq!(string(&value(0), "userId"), "u1", "saved while u1 was logged in");
    assert_eq!(string(&value(1), "userId"), "u2", "saved while u2 was logged in");
    assert_eq!(string(&results[2], "status"), "rejected", "saved while nobody was logged in");
    assert_eq!(string(&get(&results[2], "reason"), "code"), "NO_USER");
    let p4 = value(3);
    assert_eq!(string(&p4, "userId"), "u4", "the options as they were at the call");
    assert_eq!(num(&p4, "date"), 1_767_312_000_000.0, "the date as it was at the call");
    let ev = o.events("u4").await.remove(0);
    assert_eq!(num(&ev, "priority"), 1.0);
    let listed = array(&value(4));
    assert_eq!(listed.len(), 1, "entries() of u3, the user at the call");
    assert_eq!(string(&listed[0], "userId"), "u3");
    assert_eq!(value(5).as_f64(), Some(0.0), "the ids as they were at the call (a number added later would be refused)");
    assert!(o.entries_of("u5").await.is_empty());
    finish(&db, &[&o]).await;
}

#[wasm_bindgen_test]
async fn lone_surrogates_and_null_options_are_refused_and_nothing_is_stored() {
    let db = fresh_db("surrogates-null");
    let _srv = Server::new(r#"() => ({ hang: true })"#, "");
    let o = Ob::open(&db, "{}").await;
    o.start("u1");
    let lone = JsValue::from(js_sys::JsString::from_char_code1(0xD800));
    let opts = json("{}");
    set(&opts, "userId", &lone);
    let m = expect_error(o.call("saveWeight", &[n(70.0), opts]).await, "TypeError", "INVALID_TYPE", "a lone surrogate userId");
    assert!(m.contains("unpaired surrogate"), "{m}");
    expect_error(o.call_sync("start", &[JsValue::from(js_sys::JsString::from_char_code1(0xDC00))]), "TypeError", "INVALID_TYPE", "start with a lone surrogate");
    assert_eq!(get(&o.js, "currentUser").as_string().as_deref(), Some("u1"), "a refused start changes nothing");
    for key in ["userId", "date", "priority"] {
        let opts = json("{}");
        set(&opts, key, &JsValue::NULL);
        let m = expect_error(o.call("saveWeight", &[n(70.0), opts]).await, "TypeError", "INVALID_TYPE", key);
        assert!(m.contains(key) && m.contains("null"), "{m}");
    }
    expect_error(o.call("stats", &[JsValue::NULL]).await, "TypeError", "INVALID_TYPE", "stats(null)");
    expect_error(o.call("events", &[json(r#"{"userId": null}"#)]).await, "TypeError", "INVALID_TYPE", "events({ userId: null })");
    // A null options argument is an empty one, as WebIDL reads a dictionary.
    o.ok("saveWeight", &[n(70.0), JsValue::NULL]).await;
    assert_eq!(o.entries_of("u1").await.len(), 1);
    assert!(o.entries_of("\u{FFFD}").await.is_empty(), "nothing stored under the replacement character");
    finish(&db, &[&o]).await;
}

#[wasm_bindgen_test]
async fn an_endpoint_fetch_cannot_use_is_refused_at_open() {
    for endpoint in ["javascript:void 0", "data:text/plain,x", "ftp://example.com/x"] {
        let c = json("{}");
        set(&c, "endpoint", &s(endpoint));
        set(&c, "dbName", &s(&fresh_db("bad-scheme")));
        let m = expect_error(Outbox::open(c).await.map(JsValue::from), "TypeError", "INVALID_TYPE", endpoint);
        assert!(m.contains("http"), "{m}");
    }
}

#[wasm_bindgen_test]
async fn after_close_subscribe_throws_and_no_user_is_null() {
    let db = fresh_db("after-close");
    let o = Ob::open(&db, "{}").await;
    assert!(get(&o.js, "currentUser").is_null(), "no current user is null, as the types say");
    o.close();
    let rec = recorder();
    expect_error(o.call_sync("subscribe", &[get(&rec, "fn")]), "Error", "CLOSED", "subscribe after close");
    assert!(get(&o.js, "currentUser").is_null());
    finish(&db, &[]).await;
}

#[wasm_bindgen_test]
async fn process_now_resolves_while_saves_keep_coming() {
    let db = fresh_db("process-now-load");
    let _srv = Server::new(r#"() => ({ delayMs: 60 })"#, "");
    let o = Ob::open(&db, r#"{"maxConcurrent": 1, "batchSize": 2}"#).await;
    o.start("u1");
    // The saves outpace the uploads: the running pass hands over to the asked-for one, which
    // claims for at most 10 s.
    let r = wasm_bindgen_futures::JsFuture::from(process_now_under_load(&o.js, 45_000)).await.unwrap();
    assert_eq!(get(&r, "settled").as_bool(), Some(true), "processNow() never resolved ({} saves meanwhile)", num(&r, "saves"));
    finish(&db, &[&o]).await;
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

/// A review found: a refused update the entry's next update had overtaken (both written before the
/// refusal) stayed gave-up, and `resetForRetry` of it (the README's recipe, the demo's Retry)
/// sent its older values after the newer ones: the server ended with 80, the device with 81. Now
/// the later event supersedes it: removed, never sent again, nothing gave up.
#[wasm_bindgen_test]
async fn a_refused_update_a_later_update_overtook_is_superseded_and_never_sent_after_it() {
    let db = fresh_db("refused-overtaken");
    let srv = Server::new("", "");
    let o = Ob::open(&db, "{}").await;
    let e = o.save("weight", 70.0, r#"{"userId": "u1"}"#).await;
    let id = string(&e, "id");
    o.start("u1");
    o.drained("u1", Some(1), 3000).await;
    o.stop();
    o.update(&id, r#"{"quantity": 80}"#).await;
    o.update(&id, r#"{"quantity": 81}"#).await;
    let refused = string(&o.events_of("u1", &id).await[1], "id");
    srv.set_script(r#"(req) => req.method === "PUT" && req.body.quantity === 80 ? { status: 422, body: { error: "not now" } } : undefined"#);
    o.start("u1");
    eventually(3000, "both updates answered", || async { srv.count("PUT", "") == 2 }).await;
    o.drained("u1", Some(2), 3000).await;
    let evs = o.events_of("u1", &id).await;
    assert!(evs.iter().all(|ev| string(ev, "id") != refused), "the refused update is superseded: {}", evs.iter().map(show).collect::<Vec<_>>().join(", "));
    assert_eq!(num(&o.stats("u1").await, "gaveUp"), 0.0);
    // Asked for by its id anyway (an app holding an old listing): it is gone, nothing is sent.
    let r = o.call("resetForRetry", &[js_sys::Array::of1(&s(&refused)).into()]).await;
    expect_error(r, "RangeError", "UNKNOWN_EVENT", "resetForRetry of a superseded event");
    o.process_now().await;
    assert_eq!(srv.count("PUT", ""), 2);
    assert_eq!(num(&srv.live().remove(0), "quantity"), 81.0, "the server keeps the newer values");
    assert_eq!(num(&o.entries_of("u1").await[0], "quantity"), 81.0);
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

#[wasm_bindgen_test]
async fn an_endpoint_with_a_query_gets_the_id_in_its_path() {
    let db = fresh_db("endpoint-query");
    let srv = Server::new("", "");
    let o = Ob::open(&db, r#"{"endpoint": "/api/v1/progress?tenant=1#x"}"#).await;
    let a = string(&o.save("weight", 70.0, r#"{"userId": "u1"}"#).await, "id");
    let b = string(&o.save("weight", 72.0, r#"{"userId": "u1"}"#).await, "id");
    o.start("u1");
    o.drained("u1", Some(2), 3000).await;
    o.update(&a, r#"{"quantity": 71}"#).await;
    o.delete(&b).await;
    o.drained("u1", Some(4), 3000).await;
    for (method, req) in [("POST", srv.of("POST").remove(0)), ("PUT", srv.of("PUT").remove(0)), ("DELETE", srv.of("DELETE").remove(0))] {
        let url = string(&req, "url");
        assert!(url.ends_with("?tenant=1") && !url.contains('#'), "{method} went to {url}");
        assert_eq!(string(&req, "path").matches("/progress").count(), 1, "{method} {url}");
        if method != "POST" {
            assert!(string(&req, "path").starts_with("/api/v1/progress/"), "{method} {url}: the id belongs in the path");
        }
    }
    let live = srv.live();
    assert_eq!(live.len(), 1, "the delete reached the record");
    assert_eq!(num(&live[0], "quantity"), 71.0, "the update reached the record");
    finish(&db, &[&o]).await;
}

#[wasm_bindgen_test]
async fn options_count_when_inherited_non_enumerable_or_getters() {
    let db = fresh_db("odd-options");
    let _srv = Server::new(r#"() => ({ hang: true })"#, "");
    let o = Ob::open(&db, "{}").await;
    o.start("u1");
    let objects = odd_option_objects();
    for (i, opts) in objects.iter().take(4).enumerate() {
        let e = o.ok("saveWeight", &[n(70.0 + i as f64), opts]).await;
        assert_eq!(string(&e, "userId"), "u2", "options object {i}");
    }
    let m = expect_error(o.call("saveWeight", &[n(75.0), objects.get(4)]).await, "TypeError", "INVALID_TYPE", "an inherited typo");
    assert!(m.contains("userID"), "{m}");
    assert!(o.entries_of("u1").await.is_empty(), "nothing saved for the current user instead");
    assert_eq!(o.entries_of("u2").await.len(), 4);
    // Outbox.open reads its options the same way.
    let c: js_sys::Object = js_sys::Object::create(json(&format!(r#"{{"dbName": "{db}", "log": "off", "persist": false}}"#)).unchecked_ref());
    set(&c, "endpoint", &s("/api/v1/progress"));
    let other = Outbox::open(c.into()).await.unwrap_or_else(|e| panic!("{}", message(&e)));
    let other = JsValue::from(other);
    let listed = wasm_bindgen_futures::JsFuture::from(
        js_sys::Reflect::apply(&get(&other, "entries").into(), &other, &js_sys::Array::of1(&s("u2"))).unwrap().unchecked_into::<js_sys::Promise>(),
    )
    .await
    .unwrap();
    assert_eq!(array(&listed).len(), 4, "the inherited dbName was used");
    let _ = js_sys::Reflect::apply(&get(&other, "close").into(), &other, &js_sys::Array::new());
    finish(&db, &[&o]).await;
}

#[wasm_bindgen_test]
async fn credentials_in_urls_and_tokens_no_header_can_carry_are_refused_at_open() {
    let open = |key: &str, value: JsValue| {
        let c = json(r#"{"endpoint": "/api/v1/progress", "log": "off"}"#);
        set(&c, "dbName", &s(&fresh_db("refused-at-open")));
        set(&c, key, &value);
        Outbox::open(c)
    };
    let secret = "http://user:hunter2@localhost/api/v1/progress";
    for key in ["endpoint", "batchEndpoint"] {
        let m = expect_error(open(key, s(secret)).await.map(JsValue::from), "TypeError", "INVALID_TYPE", key);
        assert!(m.contains("credentials") && !m.contains("hunter2"), "{m}");
    }
    let lone = JsValue::from(js_sys::JsString::from_char_code3(0x61, 0x62, 0xD800));
    for token in [s("sec\u{20ac}ret"), s("abc\ndef"), lone] {
        let m = expect_error(open("token", token).await.map(JsValue::from), "TypeError", "INVALID_TYPE", "token");
        assert!(m.contains("header") && !m.contains("sec") && !m.contains("abc"), "{m}");
    }
}

#[wasm_bindgen_test]
async fn a_token_function_returning_what_no_header_can_carry_fails_the_attempt_clearly() {
    let db = fresh_db("token-latin1");
    let srv = Server::new("", "");
    let token = js_sys::Function::new_no_args(r"return 'sec\u20acret'");
    let o = Ob::open_with_token(&db, "{}", &token).await;
    o.save("weight", 70.0, r#"{"userId": "u1"}"#).await;
    o.start("u1");
    eventually(3000, "a failed attempt", || async { num(&o.stats("u1").await, "failed") == 1.0 }).await;
    let ev = o.events("u1").await.remove(0);
    let m = string(&ev, "errorMessage");
    assert!(m.contains("Authorization header") && !m.contains("sec"), "{m}");
    assert_eq!(srv.requests().len(), 0, "nothing sent");
    finish(&db, &[&o]).await;
}

#[wasm_bindgen_test]
async fn two_databases_and_users_whose_names_run_together_upload_independently() {
    let (db1, db2) = (fresh_db("locks"), fresh_db("locks"));
    let db2 = format!("{db1}:b{}", &db2[db2.len() - 4..]);
    let user2 = "c";
    let user1 = format!("b{}:c", &db2[db2.len() - 4..]);
    let _srv = Server::new("", "");
    let (a, b) = (Ob::open(&db1, "{}").await, Ob::open(&db2, "{}").await);
    a.start(&user1);
    b.start(user2);
    // Each leads its own uploads, both at once and for good (one shared lock would let only one
    // lead at a time, the other stealing it when the first one's record looked missing).
    let both = || get(&a.js, "isLeader").as_bool() == Some(true) && get(&b.js, "isLeader").as_bool() == Some(true);
    eventually(3000, "both uploaders at once", || async { both() }).await;
    for _ in 0..20 {
        sleep(100).await;
        assert!(both(), "one of the two lost its lead to the other");
    }
    a.save("weight", 70.0, &format!(r#"{{"userId": "{user1}"}}"#)).await;
    b.save("weight", 71.0, &format!(r#"{{"userId": "{user2}"}}"#)).await;
    a.drained(&user1, Some(1), 3000).await;
    b.drained(user2, Some(1), 3000).await;
    finish(&db2, &[&b]).await;
    finish(&db1, &[&a]).await;
}

#[wasm_bindgen_test]
async fn a_date_with_a_to_string_tag_is_a_date_and_fractional_bounds_are_kept() {
    let db = fresh_db("dates");
    let _srv = Server::new(r#"() => ({ hang: true })"#, "");
    let o = Ob::open(&db, "{}").await;
    let t = 1_767_312_000_000.0;
    let opts = json(r#"{"userId": "u1"}"#);
    set(&opts, "date", &tagged_date(t));
    let e = o.ok("saveWeight", &[n(70.0), opts]).await;
    assert_eq!(num(&e, "date"), t);
    let q = |from: f64, to: f64| {
        let q = json(r#"{"userId": "u1"}"#);
        set(&q, "from", &n(from));
        set(&q, "to", &n(to));
        q
    };
    assert_eq!(o.entries(q(t + 0.5, t + 10.0)).await.len(), 0, "from is after the measurement");
    assert_eq!(o.entries(q(t - 10.0, t - 0.5)).await.len(), 0, "to is before the measurement");
    assert_eq!(o.entries(q(t - 0.5, t + 0.5)).await.len(), 1);
    assert_eq!(o.entries(q(t + 0.2, t + 0.7)).await.len(), 0, "a range between two milliseconds is empty, not an error");
    finish(&db, &[&o]).await;
}

/// `token(user, { refresh })` that answers "old" until asked to refresh, then "new"; it records
/// each call's `refresh` in `state.calls`.
fn refreshing_token(state: &JsValue) -> js_sys::Function {
    let f = js_sys::Function::new_with_args(
        "state",
        "return (user, hint) => { (state.calls ||= []).push(!!hint.refresh); if (hint.refresh) state.fresh = true; return state.fresh ? 'new' : 'old'; }",
    );
    f.call1(&JsValue::NULL, state).unwrap().unchecked_into()
}

#[wasm_bindgen_test]
async fn a_batch_item_answered_401_is_sent_again_at_once_with_a_fresh_token() {
    let db = fresh_db("batch-401");
    // Item by item, the server refuses the old token (as a gateway per tenant might).
    let srv = Server::new("", r#"(item, i, req) => req.auth === "Bearer old" && i === 1 ? { status: 401, error: "expired" } : undefined"#);
    let state = json("{}");
    let o = Ob::open_with_token(&db, r#"{"batchEndpoint": "/api/v1/progress/batch", "backoffMs": [60000]}"#, &refreshing_token(&state)).await;
    for q in [1.0, 2.0, 3.0] {
        o.save("mood", q, r#"{"userId": "u1"}"#).await;
    }
    o.start("u1");
    o.drained("u1", Some(3), 3000).await;
    for e in o.events("u1").await {
        assert_eq!(num(&e, "attemptCount"), 0.0, "a refreshed 401 is not a counted failure: {}", show(&e));
    }
    let calls: Vec<bool> = array(&get(&state, "calls")).iter().map(|v| v.as_bool().unwrap()).collect();
    assert!(calls.contains(&true), "the token function was asked to refresh: {calls:?}");
    let sizes = srv.batch_sizes();
    assert_eq!(sizes, [3, 1], "the 401 item alone, once more, at once");
    assert_eq!(srv.live().len(), 3);
    finish(&db, &[&o]).await;
}

#[wasm_bindgen_test]
async fn a_success_whose_body_was_cut_off_is_no_answer() {
    let db = fresh_db("cut-success");
    let srv = Server::new(r#"(req, st) => st.cut ? { cut: true } : undefined"#, "");
    set(&srv.st, "cut", &JsValue::TRUE);
    let o = Ob::open(&db, r#"{"backoffMs": [100], "maxAttempts": 2}"#).await;
    o.save("weight", 70.0, r#"{"userId": "u1"}"#).await;
    o.start("u1");
    eventually(3000, "three cut answers", || async { srv.count("POST", "") >= 3 }).await;
    let e = o.events("u1").await.remove(0);
    assert_eq!(num(&e, "attemptCount"), 0.0, "{}", show(&e));
    assert_eq!(get(&e, "gaveUp").as_bool(), Some(false), "{}", show(&e));
    assert!(string(&e, "errorMessage").contains("connection dropped"), "{}", show(&e));
    set(&srv.st, "cut", &JsValue::FALSE);
    o.process_now().await;
    o.drained("u1", Some(1), 3000).await;
    assert_eq!(srv.live().len(), 1, "stored once: the key brought the first answer back");
    finish(&db, &[&o]).await;
}

#[wasm_bindgen_test]
async fn a_token_quoted_in_the_token_functions_error_is_never_stored() {
    let db = fresh_db("token-in-throw");
    let _srv = Server::new(r#"(req) => req.auth === "Bearer SECRET-tok-42" ? { status: 401, body: { error: "expired" } } : undefined"#, "");
    let f = js_sys::Function::new_with_args("user, hint", "if (hint.refresh) throw new Error('could not refresh SECRET-tok-42'); return 'SECRET-tok-42';");
    let o = Ob::open_with_token(&db, r#"{"backoffMs": [60000]}"#, &f).await;
    o.save("weight", 70.0, r#"{"userId": "u1"}"#).await;
    o.start("u1");
    eventually(3000, "the failed attempt", || async { !get(&o.events("u1").await[0], "errorMessage").is_null() }).await;
    let e = o.events("u1").await.remove(0);
    let stored = format!("{} {}", string(&e, "errorMessage"), string(&o.stats("u1").await, "lastError"));
    assert!(!stored.contains("SECRET"), "the token was stored: {stored}");
    assert!(stored.contains("could not refresh [token]"), "{stored}");
    finish(&db, &[&o]).await;
}

#[wasm_bindgen_test]
async fn offline_with_a_short_backoff_starts_no_upload() {
    let db = fresh_db("offline-short-backoff");
    let srv = Server::new("", "");
    set_online(false);
    let o = Ob::open(&db, r#"{"backoffMs": [100], "processingIntervalMs": 50}"#).await;
    for q in [1.0, 2.0, 3.0, 4.0] {
        o.save("mood", q, r#"{"userId": "u1"}"#).await;
    }
    o.start("u1");
    o.process_now().await;
    sleep(1_500).await;
    assert_eq!(srv.requests().len(), 0, "requests started while navigator.onLine was false");
    set_online(true);
    o.drained("u1", Some(4), 3000).await;
    finish(&db, &[&o]).await;
}

#[wasm_bindgen_test]
async fn an_answer_that_arrived_while_the_page_was_hung_is_used() {
    let db = fresh_db("hung-answer");
    let srv = Server::new(r#"() => ({ delayMs: 300, hop: true })"#, "");
    let o = Ob::open(&db, r#"{"requestTimeoutMs": 500, "backoffMs": [60000]}"#).await;
    o.save("weight", 70.0, r#"{"userId": "u1"}"#).await;
    o.start("u1");
    eventually(2000, "the request in flight", || async { srv.requests().len() == 1 }).await;
    // Past the request's deadline the page runs nothing; the answer comes meanwhile.
    busy(1_600.0);
    o.drained("u1", Some(1), 3000).await;
    let e = o.events("u1").await.remove(0);
    assert_eq!(srv.requests().len(), 1, "sent once: {}", show(&e));
    assert_eq!(num(&e, "requestCount"), 1.0);
    finish(&db, &[&o]).await;
}

#[wasm_bindgen_test]
async fn edits_made_while_a_refused_create_was_in_flight_replace_it() {
    let db = fresh_db("refused-in-flight");
    let srv = Server::new(r#"(req, st) => req.method === "POST" && st.refuse ? { delayMs: 300, status: 422, body: { error: "no" } } : undefined"#, "");
    set(&srv.st, "refuse", &JsValue::TRUE);
    let o = Ob::open(&db, r#"{"backoffMs": [200]}"#).await;
    o.start("u1");
    let a = string(&o.save("weight", 70.0, r#"{"userId": "u1"}"#).await, "id");
    let b = string(&o.save("weight", 80.0, r#"{"userId": "u1"}"#).await, "id");
    eventually(2000, "both creates in flight", || async { srv.count("POST", "") == 2 }).await;
    o.update(&a, r#"{"quantity": 71}"#).await;
    o.update(&b, r#"{"quantity": 81}"#).await;
    o.delete(&b).await;
    set(&srv.st, "refuse", &JsValue::FALSE);
    // A goes as a fresh create with its latest values; B never reaches the server.
    eventually(5000, "A stored with its edit", || async { srv.live().iter().any(|r| num(r, "quantity") == 71.0) }).await;
    o.drained("u1", None, 3000).await;
    let live = srv.live();
    assert_eq!(live.len(), 1, "only A is on the server");
    assert_eq!((srv.count("POST", ""), srv.count("PUT", ""), srv.count("DELETE", "")), (3, 0, 0), "two refused creates, one fresh create");
    let entries = o.entries_of("u1").await;
    assert_eq!(entries.len(), 1);
    assert_eq!(string(&entries[0], "backendId"), string(&live[0], "id"));
    let evs = o.events("u1").await;
    assert!(evs.iter().all(|e| string(e, "status") == "completed"), "nothing left waiting: {}", evs.iter().map(show).collect::<Vec<_>>().join(", "));
    assert_eq!(num(&o.stats("u1").await, "gaveUp"), 0.0);
    finish(&db, &[&o]).await;
}

#[wasm_bindgen_test]
async fn edits_of_creates_claimed_but_not_sent_yet_fold_or_remove_them() {
    let db = fresh_db("claimed-unsent");
    let srv = Server::new(r#"() => ({ delayMs: 400 })"#, "");
    let o = Ob::open(&db, r#"{"maxConcurrent": 1}"#).await;
    let mut ids = Vec::new();
    for q in [1.0, 2.0, 3.0, 4.0, 5.0] {
        ids.push(string(&o.save("mood", q, r#"{"userId": "u1"}"#).await, "id"));
    }
    o.start("u1");
    // One claim of all five; one request at a time: four wait for the slot.
    eventually(2000, "the first request", || async { srv.requests().len() == 1 }).await;
    assert_eq!(num(&o.stats("u1").await, "processing"), 5.0, "all five claimed");
    o.update(&ids[2], r#"{"quantity": 9}"#).await;
    o.delete(&ids[4]).await;
    o.drained("u1", Some(4), 8000).await;
    assert_eq!((srv.count("POST", ""), srv.count("PUT", ""), srv.count("DELETE", "")), (4, 0, 0), "the edit folded, the deleted entry never sent");
    let quantities: Vec<f64> = srv.live().iter().map(|r| num(r, "quantity")).collect();
    assert!(quantities.contains(&9.0) && !quantities.contains(&3.0) && !quantities.contains(&5.0), "{quantities:?}");
    let folded = o.events_of("u1", &ids[2]).await;
    assert_eq!(folded.len(), 1, "one event: the create with the latest values");
    assert_eq!(num(&folded[0], "requestCount"), 1.0);
    finish(&db, &[&o]).await;
}

/// A sixth probe: one hung request held back every later save for up to `requestTimeoutMs`,
/// though upload slots were free: the pass waited for it, and a save's wake-up could only start
/// the next pass (15.6 s for a save made 0.3 s after the hang, with a 15 s timeout). Now an idle
/// slot of the running pass takes new work at once.
#[wasm_bindgen_test]
async fn a_hung_request_does_not_hold_back_later_saves() {
    for batch in [false, true] {
        let db = fresh_db("hung-slot");
        let srv = Server::new("(req, st) => { st.nr = (st.nr || 0) + 1; if (st.nr === 1) return { hold: 'first' }; }", "");
        let extra = if batch {
            r#"{"requestTimeoutMs": 30000, "processingIntervalMs": 60000, "maxConcurrent": 3, "batchEndpoint": "/api/v1/progress/batch"}"#
        } else {
            r#"{"requestTimeoutMs": 30000, "processingIntervalMs": 60000, "maxConcurrent": 3}"#
        };
        let o = Ob::open(&db, extra).await;
        o.start("u1");
        let first = string(&o.save("weight", 70.0, "{}").await, "id");
        eventually(5000, "the first request to hang", || async { srv.held("first") == 1 }).await;
        let second = string(&o.save("weight", 71.0, "{}").await, "id");
        eventually(5000, "the second save uploaded while the first request hangs", || async {
            o.entries_of("u1").await.iter().any(|e| string(e, "id") == second && !get(e, "backendId").is_null())
        })
        .await;
        assert_eq!(srv.held("first"), 1, "the first request is still out (batch: {batch})");
        assert!(o.entries_of("u1").await.iter().any(|e| string(e, "id") == first && get(e, "backendId").is_null()));
        srv.release("first");
        o.drained("u1", Some(2), 10000).await;
        assert_eq!(srv.live().len(), 2);
        finish(&db, &[&o]).await;
    }
}

/// A seventh probe: a server id of ".." or "." made the later PUT/DELETE go to a parent URL
/// (the URL parser removes dot segments), whose answer completed it; an integer id beyond 2^53
/// arrived rounded, so the DELETE named another record and its 404 completed it. Such an id is
/// no usable id: the create is not counted as stored, and nothing is sent to a wrong URL.
#[wasm_bindgen_test]
async fn server_ids_that_cannot_name_the_entry_are_not_taken() {
    for id in [r#"".""#, r#""..""#, "9007199254740993"] {
        let db = fresh_db("dot-ids");
        let srv = Server::new(&format!("(req) => {{ if (req.method === 'POST') return {{ status: 201, body: {{ id: {id} }} }}; }}"), "");
        let o = Ob::open(&db, r#"{"maxAttempts": 5}"#).await;
        o.start("u1");
        let e = o.save("weight", 70.0, "{}").await;
        eventually(3000, "the create's answer", || async { !srv.requests().is_empty() && string(&o.events("u1").await[0], "status") == "failed" }).await;
        let ev = &o.events("u1").await[0];
        assert!(opt_string(ev, "errorMessage").unwrap_or_default().contains("usable"), "{id}: {ev:?}");
        let entry = o.entries_of("u1").await.into_iter().find(|x| string(x, "id") == string(&e, "id")).unwrap();
        assert!(get(&entry, "backendId").is_null(), "{id}: {entry:?}");
        assert!(srv.requests().iter().all(|r| string(r, "method") == "POST"), "{id}: nothing but the create was sent");
        finish(&db, &[&o]).await;
    }
}

/// The seventh probe: an array argument's `length` was read once per item and once more, so a
/// Proxy saying 5,000,000 first and 2 later passed the 100-delay limit of `backoffMs`, and one
/// saying 2 first and 5,000,000 later was walked for seconds before being refused. Now `length`
/// is read once and at most one item past the largest limit is read.
#[wasm_bindgen_test]
async fn an_array_argument_is_read_once_and_never_walked_past_its_limit() {
    let make = js_sys::Function::new_with_args(
        "first, later",
        "const st = { lengthReads: 0, itemReads: 0 };
         st.proxy = new Proxy([1000, 2000], { get(t, k, r) {
           if (k === 'length') return st.lengthReads++ === 0 ? first : later;
           if (typeof k === 'string' && /^[0-9]+$/.test(k)) st.itemReads++;
           return Reflect.get(t, k, r);
         } });
         return st;",
    );
    for (first, later, code) in [(5_000_000.0, 2.0, "OUT_OF_RANGE"), (2.0, 5_000_000.0, "")] {
        let st = make.call2(&JsValue::NULL, &n(first), &n(later)).unwrap();
        let c = json(r#"{"endpoint": "/api/v1/progress", "persist": false}"#);
        set(&c, "dbName", &s(&fresh_db("array-once")));
        set(&c, "backoffMs", &get(&st, "proxy"));
        let r = Outbox::open(c).await.map(JsValue::from);
        assert_eq!(num(&st, "lengthReads"), 1.0, "length read once ({first} then {later})");
        assert!(num(&st, "itemReads") <= 10_001.0, "{} items read", num(&st, "itemReads"));
        if code.is_empty() {
            let o = r.unwrap_or_else(|e| panic!("two delays, as read once: {}", message(&e)));
            js_sys::Reflect::get(&o, &s("close")).unwrap().unchecked_into::<js_sys::Function>().call0(&o).unwrap();
        } else {
            let m = expect_error(r, "RangeError", code, "a backoffMs whose length said 5,000,000 first");
            assert!(m.contains("backoffMs"), "{m}");
        }
    }
}

#[wasm_bindgen(module = "/tests/features/harness.js")]
extern "C" {
    #[wasm_bindgen(js_name = makeForeignDb)]
    fn make_foreign_db(name: &str, version: u32) -> js_sys::Promise;
    #[wasm_bindgen(js_name = foreignDbIntact)]
    fn foreign_db_intact(name: &str) -> js_sys::Promise;
}

/// The seventh probe: a database of the same name that other code made opened at v4 and then
/// failed every call ("object store not found"), or at v1-v3 refused with "AbortError". Now
/// `Outbox.open` says whose it is and what to do, and leaves it as it was.
#[wasm_bindgen_test]
async fn a_database_other_code_made_is_refused_at_open_and_left_alone() {
    for version in [1, 3, 4] {
        let db = fresh_db("foreign");
        wasm_bindgen_futures::JsFuture::from(make_foreign_db(&db, version)).await.unwrap();
        let c = json(r#"{"endpoint": "/api/v1/progress", "persist": false, "log": "off"}"#);
        set(&c, "dbName", &s(&db));
        let m = expect_error(Outbox::open(c).await.map(JsValue::from), "Error", "STORAGE", "a foreign database");
        assert!(m.contains("not created by progress-outbox") && m.contains("dbName"), "v{version}: {m}");
        let state = array(&wasm_bindgen_futures::JsFuture::from(foreign_db_intact(&db)).await.unwrap());
        assert_eq!(state[0].as_f64(), Some(f64::from(version)), "v{version}: the version is unchanged");
        assert_eq!(state[1].as_string().as_deref(), Some("foo"), "v{version}: its stores unchanged");
        assert_eq!(state[2].as_string().as_deref(), Some("bar"), "v{version}: its data unchanged");
    }
}

/// A probe found: an array holding itself (or nested 20,000 deep) passed anywhere threw "Maximum
/// call stack size exceeded" with no code, and the second such call left the wasm instance dead
/// for the whole page ("memory access out of bounds"); an array of 10,001 rows of 10,001 items
/// was walked whole (55 s, 1.5 GB) before it was refused. Arrays inside arrays are not walked now.
#[wasm_bindgen_test]
async fn arrays_that_hold_themselves_nest_deep_or_wide_are_refused_and_the_library_goes_on() {
    let db = fresh_db("hostile-arrays");
    let o = Ob::open(&db, "{}").await;
    o.start("u1");
    for (i, a) in hostile_arrays().iter().enumerate() {
        let what = ["an array holding itself", "an array nested 20,000 deep", "an array of wide rows"][i];
        for _ in 0..2 {
            expect_error(o.call("saveWeight", std::slice::from_ref(&a)).await, "TypeError", "INVALID_TYPE", what);
            expect_error(o.call("save", &[a.clone(), n(70.0)]).await, "TypeError", "INVALID_TYPE", what);
            expect_error(o.call("resetForRetry", &[js_sys::Array::of1(&a).into()]).await, "TypeError", "INVALID_TYPE", what);
            expect_error(o.call("start", std::slice::from_ref(&a)).await, "TypeError", "INVALID_TYPE", what);
        }
        let c = json(r#"{"endpoint": "/api/v1/progress"}"#);
        set(&c, "dbName", &s(&fresh_db("hostile-arrays-open")));
        set(&c, "backoffMs", &a);
        let opened = Outbox::open(c).await.map(JsValue::from);
        // The wide one is refused for its length first: more delays than allowed.
        let (class, code) = if i == 2 { ("RangeError", "OUT_OF_RANGE") } else { ("TypeError", "INVALID_TYPE") };
        expect_error(opened, class, code, what);
    }
    // Each string is bounded, but an array of one long string repeated was copied
    // item by item (10 GB: the wasm's memory ran out and the instance trapped for good). Items
    // longer than any id are described, not copied; so is a name of an option no one has.
    let long: JsValue = long_strings().into();
    // Still strings: refused as values (RangeError), like an id of 257 characters, not as a wrong type.
    let why = expect_error(o.call("resetForRetry", std::slice::from_ref(&long)).await, "RangeError", "OUT_OF_RANGE", "10,000 long ids");
    assert!(why.contains("ids[0]") && why.contains("at most 256 characters"), "{why}");
    let why =
        expect_error(o.call("update", &[s(&"x".repeat(1 << 21)), json(r#"{"quantity": 71}"#)]).await, "RangeError", "OUT_OF_RANGE", "an id of 2^21 characters");
    assert!(why.contains("at most 256 characters"), "{why}");
    let c = json(r#"{"endpoint": "/api/v1/progress"}"#);
    set(&c, "dbName", &s(&fresh_db("hostile-arrays-open")));
    set(&c, "backoffMs", &long);
    expect_error(Outbox::open(c).await.map(JsValue::from), "RangeError", "OUT_OF_RANGE", "10,000 long delays");
    let c = json(r#"{"endpoint": "/api/v1/progress"}"#);
    set(&c, &"k".repeat(1 << 20), &n(1.0));
    let why = expect_error(Outbox::open(c).await.map(JsValue::from), "TypeError", "INVALID_TYPE", "an option name of 2^20 characters");
    assert!(why.contains("… (1048576 characters)") && why.len() < 2_000, "{}", &why[..why.len().min(300)]);
    // Nothing stored, and the instance works.
    assert!(o.events("u1").await.is_empty());
    let e = o.save("weight", 70.0, "{}").await;
    assert_eq!(num(&e, "quantity"), 70.0);
    finish(&db, &[&o]).await;
}

/// A probe found: a typo that is not enumerable (a class getter, a property defined with
/// `Object.defineProperty`, or on a prototype-less object the options inherit from) was ignored,
/// and the save went to the started user instead of being refused.
#[wasm_bindgen_test]
async fn typos_that_are_not_enumerable_are_refused_too() {
    let db = fresh_db("hidden-typos");
    let o = Ob::open(&db, "{}").await;
    o.start("u1");
    for options in hidden_typos().iter() {
        let m = expect_error(o.call("saveWeight", &[n(70.0), options]).await, "TypeError", "INVALID_TYPE", "a hidden userID typo");
        assert!(m.contains("userID"), "{m}");
    }
    assert!(o.events("u1").await.is_empty(), "nothing stored");
    finish(&db, &[&o]).await;
}

/// A probe found: a string of hundreds of megabytes was copied whole into the wasm before its
/// length was checked (a 256M-character user id: 21 s and 257 MB of wasm memory kept for good).
/// Now a string far longer than any value taken is refused by its length, uncopied.
#[wasm_bindgen_test]
async fn a_huge_string_is_refused_without_being_copied_into_the_wasm() {
    let db = fresh_db("huge-string");
    let o = Ob::open(&db, "{}").await;
    let huge: JsValue = js_sys::JsString::from("u").repeat(32 << 20).into();
    let before = wasm_memory_bytes(&wasm_bindgen::memory());
    let options: JsValue = js_sys::Object::new().into();
    set(&options, "userId", &huge);
    // A string still: refused as a value (RangeError), by its length.
    let m = expect_error(o.call("saveWeight", &[n(70.0), options]).await, "RangeError", "OUT_OF_RANGE", "a 32M-character userId");
    assert!(m.contains("at most 256 characters (got 33554432)"), "{m}");
    expect_error(o.call("delete", &[huge]).await, "RangeError", "OUT_OF_RANGE", "a 32M-character entry id");
    let grown = wasm_memory_bytes(&wasm_bindgen::memory()) - before;
    assert!(grown < f64::from(8u32 << 20), "the wasm memory grew by {grown} bytes");
    finish(&db, &[&o]).await;
}

/// A chaos soak found: a create whose earlier request may have been stored (no answer, a 5xx)
/// and whose retry was then refused with a 4xx (a gateway's body limit, say) counted as never
/// stored: the next edit went out as a fresh create under a new key (two records on the server
/// for one entry), and a delete removed the entry without a request (its record stayed live).
/// Now such a create gives up as after its last attempt: the edits wait for it, and
/// `resetForRetry` sends it again under its own key.
#[wasm_bindgen_test]
async fn a_create_refused_after_a_request_that_may_have_been_stored_keeps_its_edits_behind_it() {
    let db = fresh_db("refused-maybe-stored");
    let srv = Server::new(
        r#"(req, st) => { if (req.method !== "POST" || st.open) return undefined; st.n = (st.n || 0) + 1; return st.n === 1 ? { status: 503, body: { error: "busy" } } : { status: 413, body: { error: "too large for the gateway" } }; }"#,
        "",
    );
    let o = Ob::open(&db, r#"{"backoffMs": [100]}"#).await;
    o.start("u1");
    let e = o.save("weight", 70.0, "{}").await;
    let id = string(&e, "id");
    let create = string(&o.events_of("u1", &id).await[0], "id");
    eventually(3000, "the create gave up", || async { get(&o.event("u1", &create).await, "gaveUp").as_bool() == Some(true) }).await;
    let gave_up = o.event("u1", &create).await;
    assert!(string(&gave_up, "errorMessage").contains("may have been stored"), "{}", show(&gave_up));
    // An edit and a delete: both wait behind the create (nothing is sent for them).
    o.update(&id, r#"{"quantity": 71}"#).await;
    sleep(300).await;
    assert_eq!(srv.count("POST", ""), 2, "no fresh create under a new key");
    o.delete(&id).await;
    sleep(300).await;
    assert_eq!(srv.requests().len(), 2, "nothing sent for the edit or the delete");
    // The server takes it again: the create goes under its own key, then the rest in order.
    srv.set_script(r#"() => undefined"#);
    o.ok("resetForRetry", &[js_sys::Array::of1(&s(&create)).into()]).await;
    eventually(5000, "the delete", || async { srv.count("DELETE", "") == 1 }).await;
    let keys: Vec<String> = srv.of("POST").iter().map(|r| string(r, "key")).collect();
    assert!(keys.iter().all(|k| *k == create), "every POST under the create's key: {keys:?}");
    assert!(srv.live().is_empty(), "the entry is deleted on the server too");
    finish(&db, &[&o]).await;
}

/// A second chaos soak found the same hole one step later: a create whose last allowed attempt
/// was stored by the server with an answer it could not use (a 2xx without an id, a gateway's
/// 502, a 303) gave up without remembering that it may have been stored; after `resetForRetry`,
/// a 4xx to the retry counted as "never stored", and the next edit went out as a fresh create
/// under a new key (two records for one entry). Giving up now remembers it, as retrying does.
#[wasm_bindgen_test]
async fn a_create_that_gave_up_after_its_last_attempt_was_stored_keeps_its_edits_behind_it_after_a_reset() {
    let db = fresh_db("gave-up-maybe-stored");
    let srv = Server::new(
        r#"(req, st) => { if (req.method !== "POST" || st.open) return undefined; st.n = (st.n || 0) + 1; return st.n === 1 ? { notJson: true } : { status: 400, body: { error: "rejected by the gateway" } }; }"#,
        "",
    );
    let o = Ob::open(&db, r#"{"backoffMs": [100], "maxAttempts": 1}"#).await;
    o.start("u1");
    let e = o.save("weight", 70.0, "{}").await;
    let id = string(&e, "id");
    let create = string(&o.events_of("u1", &id).await[0], "id");
    eventually(3000, "the create gave up", || async { get(&o.event("u1", &create).await, "gaveUp").as_bool() == Some(true) }).await;
    assert_eq!(srv.all().len(), 1, "the server stored it, its answer was unusable");
    // The README's recipe: reset what gave up. The retry meets a 4xx.
    o.ok("resetForRetry", &[js_sys::Array::of1(&s(&create)).into()]).await;
    eventually(3000, "the retry gave up", || async { srv.count("POST", "") == 2 && get(&o.event("u1", &create).await, "gaveUp").as_bool() == Some(true) })
        .await;
    let gave_up = o.event("u1", &create).await;
    assert!(string(&gave_up, "errorMessage").contains("may have been stored"), "{}", show(&gave_up));
    // An edit waits behind the create: no fresh create under a new key.
    o.update(&id, r#"{"quantity": 71}"#).await;
    sleep(300).await;
    assert_eq!(srv.count("POST", ""), 2, "no fresh create under a new key: {:?}", srv.of("POST").iter().map(|r| string(r, "key")).collect::<Vec<_>>());
    // The server takes it again: the create goes under its own key (replayed), then the update.
    srv.set_script(r#"() => undefined"#);
    o.ok("resetForRetry", &[js_sys::Array::of1(&s(&create)).into()]).await;
    eventually(5000, "the update", || async { srv.count("PUT", "") == 1 }).await;
    let keys: Vec<String> = srv.of("POST").iter().map(|r| string(r, "key")).collect();
    assert!(keys.iter().all(|k| *k == create), "every POST under the create's key: {keys:?}");
    assert_eq!(srv.all().len(), 1, "one record for the entry");
    assert_eq!(num(&srv.live()[0], "quantity"), 71.0);
    finish(&db, &[&o]).await;
}

/// A contract audit found: `processNow()` against a server that never answers waited for the
/// request's own timeout (30 s by default; 10 s + `requestTimeoutMs` at most), past every call's
/// 10 s bound (CONTRACT §3). Now it answers at 10 s with what the pass did so far
/// (`finished: false`) while the pass goes on; the request is never sent twice, and its answer,
/// when it comes, is recorded.
#[wasm_bindgen_test]
async fn process_now_answers_within_10_s_while_the_server_stalls_and_the_pass_goes_on() {
    let db = fresh_db("process-now-bound");
    let srv = Server::new(r#"(req) => req.method === "POST" ? { hold: "stall" } : undefined"#, "");
    let o = Ob::open(&db, r#"{"requestTimeoutMs": 60000}"#).await;
    o.start("u1");
    let e = o.save("weight", 70.0, "{}").await;
    let id = string(&e, "id");
    eventually(3000, "the upload under way", || async { srv.held("stall") == 1 }).await;
    let t0 = js_sys::Date::now();
    let report = o.process_now().await;
    let waited = js_sys::Date::now() - t0;
    assert!(waited < 12_000.0, "processNow() took {waited} ms");
    assert_eq!(get(&report, "finished").as_bool(), Some(false), "{}", show(&report));
    assert_eq!(string(&report, "userId"), "u1");
    let create = o.events_of("u1", &id).await.remove(0);
    assert_eq!(string(&create, "status"), "processing", "still in flight: {}", show(&create));
    // The server answers: recorded, one request in all.
    assert_eq!(srv.release("stall"), 1);
    eventually(3000, "the create completed", || async { string(&o.events_of("u1", &id).await[0], "status") == "completed" }).await;
    assert_eq!(srv.count("POST", ""), 1);
    // With nothing stalled, processNow() waits for its pass: finished.
    let report = o.process_now().await;
    assert_eq!(get(&report, "finished").as_bool(), Some(true), "{}", show(&report));
    finish(&db, &[&o]).await;
}

/// A probe found: retries that came due together (a backlog the server answered 503 to, then a
/// reload) were all promoted by the next claim, in one transaction: with 30,000 it outlived the
/// 9 s bound, was aborted, and the same claim was tried again for ever (nothing uploaded; saves
/// queued behind it rejected with `TIMEOUT`). A claim now promotes a bounded number of them and
/// leaves the rest for the next one.
#[wasm_bindgen_test]
async fn retries_coming_due_together_are_promoted_a_bounded_number_per_claim() {
    let db = fresh_db("due-together");
    let srv = Server::new("(req, st) => st.down ? { status: 503, body: { error: 'down' } } : undefined", "");
    set(&srv.st, "down", &JsValue::TRUE);
    let config = r#"{"batchEndpoint": "/api/v1/progress/batch", "backoffMs": [60000], "maxAttempts": 100, "processingIntervalMs": 100}"#;
    let o = Ob::open(&db, config).await;
    let first = string(&o.save("steps", 1.0, r#"{"userId": "u1"}"#).await, "id");
    o.start("u1");
    let event = string(&o.events("u1").await[0], "id");
    let failed = o.wait_status("u1", &event, "failed", 5_000).await;
    assert_eq!(num(&failed, "attemptCount"), 1.0);
    o.stop();
    o.close();
    // 3,000 retries due 1.5 s after the next session starts: it times each of them itself.
    const N: u32 = 3_000;
    wasm_bindgen_futures::JsFuture::from(clone_retrying(&db, "u1", N, js_sys::Date::now() + 1_500.0)).await.unwrap();
    set(&srv.st, "down", &JsValue::FALSE);
    let puts = count_puts("events");
    let o = Ob::open(&db, config).await;
    o.start("u1");
    eventually(60_000, "every retry uploaded", || async { num(&o.stats("u1").await, "completed") == f64::from(N) }).await;
    let most = call_method(&puts, "max");
    call_method(&puts, "restore");
    // A claim promotes at most 500 timed by this context and 500 more due on the wall clock, then
    // claims a batch (the same 3,000 in one claim: 3,500 puts).
    assert!(most.as_f64().unwrap() <= 1_100.0, "one transaction wrote {most:?} events");
    assert_eq!(srv.live().len(), N as usize, "each stored once");
    assert_eq!(srv.by_local(&first).len(), 1);
    finish(&db, &[&o]).await;
}

fn call_method(obj: &JsValue, name: &str) -> JsValue {
    js_sys::Reflect::get(obj, &s(name)).unwrap().unchecked_into::<js_sys::Function>().call0(obj).unwrap()
}

/// A review of the demo found: the stats of a user were delivered to subscribers after `stop()`
/// (read before it, delivered after): the page showed the previous user's counts and health with
/// nobody logged in, and kept them. A reading made for a user who is no longer current is dropped.
#[wasm_bindgen_test]
async fn subscribers_hear_nothing_of_a_user_after_stop() {
    let db = fresh_db("sub-after-stop");
    let _srv = Server::new("() => ({ hang: true })", "");
    let o = Ob::open(&db, r#"{"log": "off"}"#).await;
    o.start("u1");
    let rec = recorder();
    let _off = o.call_sync("subscribe", &[get(&rec, "fn")]).unwrap();
    eventually(3_000, "the first reading", || async { !array(&get(&rec, "seen")).is_empty() }).await;
    for round in 0..5 {
        // The save makes the subscribers read u1's stats; the logout comes before that reading ends.
        o.save("weight", 70.0 + f64::from(round), r#"{}"#).await;
        o.stop();
        let heard = array(&get(&rec, "seen")).len();
        sleep(300).await;
        let after: Vec<String> = array(&get(&rec, "seen"))[heard..].iter().map(|s| string(s, "userId")).collect();
        assert!(after.is_empty(), "round {round}: heard after stop(): {after:?}");
        o.start("u1");
        // A new session is heard from, even with the same numbers as the last reading shown.
        eventually(3_000, "a reading for the new session", || async { array(&get(&rec, "seen")).len() > heard }).await;
    }
    // Logout and login with nothing changed: the app cleared its view at logout, and hears again.
    sleep(300).await;
    let heard = array(&get(&rec, "seen")).len();
    o.stop();
    o.start("u1");
    eventually(3_000, "a reading for the same user's new session", || async { array(&get(&rec, "seen")).len() > heard }).await;
    finish(&db, &[&o]).await;
}

/// A fresh outbox (`requestTimeoutMs` 30 s) with u1 started, whose first upload (u1's weight 70)
/// the server holds as "first" (then answers with `after_hold`'s fields, e.g. `, networkError:
/// true`, once let go): (server, outbox, the entry's id).
async fn u1_first_upload_held(db: &str, after_hold: &str) -> (Server, Ob, String) {
    let script = format!(r#"(req, st) => st.heldOnce ? undefined : ((st.heldOnce = true), {{ hold: "first"{after_hold} }})"#);
    let srv = Server::new(&script, "");
    let o = Ob::open(db, r#"{"requestTimeoutMs": 30000}"#).await;
    o.start("u1");
    let a = string(&o.save("weight", 70.0, r#"{"userId": "u1"}"#).await, "id");
    eventually(3000, "u1's first upload held by the server", || async { srv.held("first") == 1 }).await;
    (srv, o, a)
}

/// A `processNow()` asked while an upload hung (a stalled server, or a token function that does
/// not answer) made the running pass stop claiming at once, and that pass could not end before
/// the hung upload: every save made meanwhile waited for it, up to `requestTimeoutMs` (30 s by
/// default), though "one stuck request holds back nothing else" (probe X, X1).
#[wasm_bindgen_test]
async fn a_process_now_asked_during_a_hung_upload_holds_back_no_new_save() {
    let db = fresh_db("pn-hung");
    let (srv, o, a) = u1_first_upload_held(&db, "").await;
    let asked: js_sys::Promise = o.call_sync("processNow", &[]).unwrap().unchecked_into();
    sleep(50).await;
    let b = string(&o.save("weight", 71.0, r#"{"userId": "u1"}"#).await, "id");
    eventually(5000, "the new save uploaded while the first upload hangs", || async {
        o.events_of("u1", &b).await.iter().any(|e| string(e, "status") == "completed")
    })
    .await;
    assert_eq!(srv.held("first"), 1, "the first upload still hangs");
    srv.release("first");
    // The asked-for pass settles (it ran once the held upload ended, or answered at its bound).
    wasm_bindgen_futures::JsFuture::from(asked).await.unwrap();
    o.drained("u1", Some(2), 5000).await;
    assert!(o.events_of("u1", &a).await.iter().all(|e| string(e, "status") == "completed"));
    assert_eq!(srv.count("POST", ""), 2, "each sent once");
    finish(&db, &[&o]).await;
}

/// `start(other)` while a request of the previous user hung (a stalled server): the new user's
/// first pass waited for it, up to `requestTimeoutMs`, since one pass ran at a time per `Outbox`
/// and the previous user's held the pass gate until its last upload ended (probe X, X2). The
/// previous user's upload still finishes and is recorded, and `close()` still waits for it.
#[wasm_bindgen_test]
async fn a_switch_of_user_does_not_wait_for_the_previous_users_hung_request() {
    let db = fresh_db("switch-hung");
    let (srv, o, a) = u1_first_upload_held(&db, "").await;
    o.start("u2");
    let b = string(&o.save("weight", 80.0, r#"{"userId": "u2"}"#).await, "id");
    eventually(5000, "u2's save uploaded while u1's request hangs", || async {
        o.events_of("u2", &b).await.iter().any(|e| string(e, "status") == "completed")
    })
    .await;
    // A pass asked for now runs at once, not behind u1's request.
    let report = o.process_now().await;
    assert_eq!(get(&report, "finished"), JsValue::TRUE, "{report:?}");
    assert_eq!(srv.held("first"), 1, "u1's request still hangs");
    // Closing waits for it: answered, it is recorded (u1 is no longer current).
    closed_while_held_then_recorded(&db, &o, &srv, "first", &a).await;
}

/// Closes `o` while the server holds u1's upload of `entry` (`hold`), then answers it: `close()`
/// waited, so the answer is recorded (seen from a new instance); two POSTs in all, each sent once.
async fn closed_while_held_then_recorded(db: &str, o: &Ob, srv: &Server, hold: &str, entry: &str) {
    o.close();
    sleep(300).await;
    srv.release(hold);
    let reopened = Ob::open(db, r#"{}"#).await;
    eventually(5000, "the held upload recorded after it was answered", || async {
        reopened.events_of("u1", entry).await.iter().all(|e| string(e, "status") == "completed")
    })
    .await;
    assert_eq!(srv.count("POST", ""), 2, "each sent once");
    finish(db, &[&reopened]).await;
}

/// A pass run by `processNow()` whose session ends while its upload hangs lets the pass gate go
/// (see the test above); `close()` still waits for that upload and records its answer before it
/// closes the connection (it waited for the gate alone, which that pass no longer holds).
#[wasm_bindgen_test]
async fn close_waits_for_a_process_now_pass_whose_session_ended() {
    let db = fresh_db("close-detached");
    // The first request gets no answer (uploads then wait out the backoff, 60 s here, so the
    // processing loop leaves the next save alone); the second, sent by processNow(), is held.
    let srv =
        Server::new(r#"(req, st) => { st.n = (st.n || 0) + 1; return st.n === 1 ? { networkError: true } : st.n === 2 ? { hold: "b" } : undefined; }"#, "");
    let o = Ob::open(&db, r#"{"requestTimeoutMs": 30000}"#).await;
    o.start("u1");
    o.save("weight", 70.0, r#"{}"#).await;
    eventually(3000, "the first upload failed", || async {
        srv.count("POST", "") == 1 && o.events("u1").await.iter().all(|e| string(e, "status") != "processing")
    })
    .await;
    let b = string(&o.save("weight", 71.0, r#"{}"#).await, "id");
    let asked: js_sys::Promise = o.call_sync("processNow", &[]).unwrap().unchecked_into();
    eventually(3000, "the second upload held by the server", || async { srv.held("b") == 1 }).await;
    closed_while_held_then_recorded(&db, &o, &srv, "b", &b).await;
    wasm_bindgen_futures::JsFuture::from(asked).await.unwrap();
}

/// The same with `batchEndpoint` and a token function that does not answer for the previous
/// user: the new user's batch goes at once. A token that answers after the switch sends nothing
/// for the previous user (no new upload starts for a user no longer current): its event goes
/// back to the queue, not left `processing`.
#[wasm_bindgen_test]
async fn a_switch_of_user_does_not_wait_for_the_previous_users_hung_token_in_batches() {
    let db = fresh_db("switch-token");
    let srv = Server::new("", "");
    let token = js_sys::Function::new_with_args("user", "return user === 'u1' ? new Promise((r) => { globalThis.__u1Token = r; }) : 'tok';");
    let o = Ob::open_with_token(&db, r#"{"batchEndpoint": "/api/v1/progress/batch", "requestTimeoutMs": 30000}"#, &token).await;
    let global: JsValue = js_sys::global().into();
    o.start("u1");
    let a = string(&o.save("weight", 70.0, r#"{}"#).await, "id");
    eventually(3000, "u1's token asked", || async { get(&global, "__u1Token").is_function() }).await;
    o.start("u2");
    let b = string(&o.save("weight", 80.0, r#"{}"#).await, "id");
    eventually(5000, "u2's save uploaded while u1's token hangs", || async { o.events_of("u2", &b).await.iter().any(|e| string(e, "status") == "completed") })
        .await;
    let answer: js_sys::Function = get(&global, "__u1Token").unchecked_into();
    answer.call1(&JsValue::NULL, &JsValue::from_str("tok")).unwrap();
    eventually(5000, "u1's claim handed back unsent", || async { o.events_of("u1", &a).await.iter().all(|e| string(e, "status") == "pending") }).await;
    assert_eq!(srv.batches().len(), 1, "only u2's batch was sent");
    set(&global, "__u1Token", &JsValue::UNDEFINED);
    finish(&db, &[&o]).await;
}

/// The previous user's requests still out after a switch count against `maxConcurrent`: the new
/// user's pass opens only the slots they leave, one at least (review S, M1: each pass opened
/// `maxConcurrent` of its own).
#[wasm_bindgen_test]
async fn requests_left_out_by_a_switch_count_against_max_concurrent() {
    let db = fresh_db("switch-cap");
    let srv = Server::new(r#"(req, st) => st.heldOnce ? { delayMs: 300 } : ((st.heldOnce = true), { hold: "first" })"#, "");
    let o = Ob::open(&db, r#"{"requestTimeoutMs": 30000, "maxConcurrent": 2}"#).await;
    o.start("u1");
    o.save("weight", 70.0, r#"{}"#).await;
    eventually(3000, "u1's upload held by the server", || async { srv.held("first") == 1 }).await;
    for q in 0..4 {
        o.save("weight", 80.0 + f64::from(q), r#"{"userId": "u2"}"#).await;
    }
    o.start("u2");
    o.drained("u2", Some(4), 10_000).await;
    assert_eq!(srv.max_in_flight(), 2, "u1's held request and one of u2's at a time");
    srv.release("first");
    finish(&db, &[&o]).await;
}

/// What a pass of a session that ended met is old news for the current one: the previous user's
/// request that ends without an answer after the switch does not make the new user's uploads
/// wait out the unreachable server's backoff (60 s here), as the new user's own answers show the
/// server answers (review S).
#[wasm_bindgen_test]
async fn no_answer_to_the_previous_users_request_after_a_switch_holds_back_nothing() {
    let db = fresh_db("switch-neterr");
    let (srv, o, a) = u1_first_upload_held(&db, ", networkError: true").await;
    o.start("u2");
    o.save("weight", 80.0, r#"{}"#).await;
    o.drained("u2", Some(1), 5000).await;
    srv.release("first");
    eventually(3000, "u1's upload failed without an answer", || async { o.events_of("u1", &a).await.iter().all(|e| string(e, "status") == "failed") }).await;
    o.save("weight", 81.0, r#"{}"#).await;
    o.drained("u2", Some(2), 5000).await;
    finish(&db, &[&o]).await;
}

/// What the previous user's pass claimed and will never send goes back to the queue at the
/// switch, not when its last upload ends (probe S2, LOW-2: `processing` for up to a request
/// timeout, though only one request was out).
#[wasm_bindgen_test]
async fn a_switch_hands_back_the_previous_users_unsent_claims_at_once() {
    let db = fresh_db("switch-handback");
    let srv = Server::new(r#"(req, st) => st.heldOnce ? undefined : ((st.heldOnce = true), { hold: "first" })"#, "");
    let o = Ob::open(&db, r#"{"requestTimeoutMs": 30000, "maxConcurrent": 1}"#).await;
    for q in 0..4 {
        o.save("weight", 70.0 + f64::from(q), r#"{"userId": "u1"}"#).await;
    }
    o.start("u1");
    eventually(3000, "u1's first upload held by the server", || async { srv.held("first") == 1 }).await;
    assert!(num(&o.stats("u1").await, "processing") > 1.0, "several claimed, one sent");
    o.start("u2");
    eventually(3000, "u1's unsent claims handed back", || async {
        let s = o.stats("u1").await;
        num(&s, "processing") == 1.0 && num(&s, "pending") == 3.0
    })
    .await;
    assert_eq!(srv.held("first"), 1, "u1's first upload still hangs");
    srv.release("first");
    finish(&db, &[&o]).await;
}
