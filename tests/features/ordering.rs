//! Per-entry ordering (CONTRACT §1 "Edits and deletes"): the events of one entry reach the server
//! in the order written, never two at once; an update or delete waits for its entry's backend id
//! (the create's answer) and carries it; other entries' events flow past a waiting one.

use wasm_bindgen::JsValue;
use wasm_bindgen_test::wasm_bindgen_test;

use crate::support::*;

fn n_of(req: &JsValue) -> f64 {
    num(req, "n")
}

/// Asserts request `later` went out only after `earlier` was answered.
fn after_answer(srv: &Server, earlier: &JsValue, later: &JsValue) {
    let answered = srv.position("ans", n_of(earlier));
    let sent = srv.position("req", n_of(later));
    assert!(answered >= 0, "request {} was never answered", n_of(earlier));
    assert!(
        sent > answered,
        "{} {} went out before the answer to {} {}",
        string(later, "method"),
        string(later, "path"),
        string(earlier, "method"),
        string(earlier, "path")
    );
}

#[wasm_bindgen_test]
async fn an_update_written_while_its_create_is_in_flight_goes_after_the_answer_with_the_creates_id() {
    let db = fresh_db("order-inflight");
    let srv = Server::new("(req) => req.method === 'POST' ? { hold: 'create' } : undefined", "");
    let o = Ob::open(&db, "{}").await;
    o.start("u1");
    let e = o.save("weight", 70.0, "{}").await;
    let id = string(&e, "id");
    eventually(3000, "the create to be in flight", || async { srv.held("create") == 1 }).await;
    let updated = o.update(&id, r#"{"quantity": 71}"#).await;
    assert_eq!(num(&updated, "quantity"), 71.0);
    let evs = o.events_of("u1", &id).await;
    assert_eq!(evs.len(), 2, "the create's body is fixed once its request went out: the update queues");
    assert_eq!((string(&evs[0], "status"), string(&evs[1], "status")), ("processing".to_owned(), "pending".to_owned()));
    assert_eq!(num(&get(&evs[0], "metadata"), "quantity"), 70.0, "the create in flight keeps its body");
    // Several intervals pass: nothing is sent for the entry while its create is unanswered.
    sleep(300).await;
    assert_eq!(srv.requests().len(), 1, "only the create went out");

    srv.release("create");
    o.drained("u1", Some(2), 3000).await;
    let post = srv.of("POST").remove(0);
    let put = srv.of("PUT").remove(0);
    assert_eq!(srv.requests().len(), 2);
    let backend = string(&o.entries_of("u1").await[0], "backendId");
    assert_eq!(backend, "srv-1");
    assert!(string(&put, "path").ends_with("/api/v1/progress/srv-1"), "the update carries the create's id: {}", string(&put, "path"));
    after_answer(&srv, &post, &put);
    assert_eq!(num(&get(&put, "body"), "quantity"), 71.0);
    assert_eq!(num(&srv.record("srv-1"), "quantity"), 71.0);
    assert_eq!(num(&o.entries_of("u1").await[0], "quantity"), 71.0);
    srv.assert_one_at_a_time();
    finish(&db, &[&o]).await;
}

#[wasm_bindgen_test]
async fn updates_and_a_delete_queued_behind_a_create_in_flight_go_in_order_one_at_a_time() {
    let db = fresh_db("order-queue");
    let srv = Server::new("(req) => req.method === 'POST' ? { hold: 'create' } : { delayMs: 20 }", "");
    let o = Ob::open(&db, "{}").await;
    o.start("u1");
    let e = o.save("steps", 1000.0, "{}").await;
    let id = string(&e, "id");
    eventually(3000, "the create to be in flight", || async { srv.held("create") == 1 }).await;
    o.update(&id, r#"{"quantity": 2000}"#).await;
    o.update(&id, r#"{"quantity": 3000}"#).await;
    o.delete(&id).await;
    assert!(o.entries_of("u1").await.is_empty(), "deleted: hidden at once, though its create is still in flight");
    let evs = o.events_of("u1", &id).await;
    let ops: Vec<String> = evs.iter().map(|e| string(e, "operation")).collect();
    assert_eq!(ops, ["create", "update", "update", "delete"]);
    sleep(200).await;
    assert_eq!(srv.requests().len(), 1);

    srv.release("create");
    o.drained("u1", Some(4), 5000).await;
    let reqs = srv.requests();
    let sent: Vec<(String, String)> = reqs.iter().map(|r| (string(r, "method"), string(r, "path").rsplit('/').next().unwrap().to_owned())).collect();
    assert_eq!(
        sent,
        [("POST".to_owned(), "progress".to_owned()), ("PUT".into(), "srv-1".into()), ("PUT".into(), "srv-1".into()), ("DELETE".into(), "srv-1".into())],
        "in the order written, each addressed by the create's id"
    );
    for pair in reqs.windows(2) {
        after_answer(&srv, &pair[0], &pair[1]);
    }
    let keys: Vec<String> = reqs.iter().map(|r| string(r, "key")).collect();
    let event_ids: Vec<String> = evs.iter().map(|e| string(e, "id")).collect();
    assert_eq!(keys, event_ids, "each request carries its own event's key");
    assert_eq!((num(&get(&reqs[1], "body"), "quantity"), num(&get(&reqs[2], "body"), "quantity")), (2000.0, 3000.0));
    let rec = srv.record("srv-1");
    assert_eq!((num(&rec, "quantity"), get(&rec, "deleted").as_bool()), (3000.0, Some(true)));
    assert!(raw(&db, "tombstones").await.is_empty());
    srv.assert_one_at_a_time();
    finish(&db, &[&o]).await;
}

#[wasm_bindgen_test]
async fn an_update_then_a_delete_of_a_synced_entry_both_reach_the_server() {
    // The update waits (offline: nothing uploads); the delete is written behind it and takes the
    // entry out of `entries`: the update must still find the entry's backend id.
    let db = fresh_db("order-update-delete");
    let srv = Server::new("", "");
    let o = Ob::open(&db, "{}").await;
    o.start("u1");
    let e = o.save("mood", 5.0, "{}").await;
    let id = string(&e, "id");
    o.drained("u1", Some(1), 3000).await;
    o.stop();
    o.update(&id, r#"{"quantity": 6}"#).await;
    o.delete(&id).await;
    o.start("u1");
    o.drained("u1", Some(3), 5000).await;
    let sent: Vec<String> = srv.requests().iter().map(|r| format!("{} {}", string(r, "method"), string(r, "path").rsplit('/').next().unwrap())).collect();
    assert_eq!(sent, ["POST progress", "PUT srv-1", "DELETE srv-1"]);
    let rec = srv.record("srv-1");
    assert_eq!((num(&rec, "quantity"), get(&rec, "deleted").as_bool()), (6.0, Some(true)));
    srv.assert_one_at_a_time();
    finish(&db, &[&o]).await;
}

#[wasm_bindgen_test]
async fn after_a_failed_create_its_update_waits_while_other_entries_flow_past() {
    let db = fresh_db("order-503");
    // The first POST of the 70 kg entry is answered 503.
    let srv = Server::new(
        "(req, st) => req.method === 'POST' && req.body.quantity === 70 && !st.failedOnce ? (st.failedOnce = true, { status: 503, body: { error: 'busy' } }) : undefined",
        "",
    );
    let o = Ob::open(&db, r#"{"backoffMs": [60000]}"#).await;
    o.start("u1");
    let a = o.save("weight", 70.0, "{}").await;
    let a_id = string(&a, "id");
    let create = o.events_of("u1", &a_id).await.remove(0);
    let create_id = string(&create, "id");
    let failed = o.wait_status("u1", &create_id, "failed", 3000).await;
    assert_eq!(num(&failed, "attemptCount"), 1.0);
    o.update(&a_id, r#"{"quantity": 71}"#).await;
    let b = o.save("weight", 80.0, "{}").await;
    let b_id = string(&b, "id");
    eventually(3000, "the other entry to sync", || async {
        o.entries_of("u1").await.iter().any(|e| string(e, "id") == b_id && get(e, "backendId").is_string())
    })
    .await;
    sleep(300).await;
    let evs = o.events_of("u1", &a_id).await;
    assert_eq!((string(&evs[0], "status"), string(&evs[1], "status")), ("failed".to_owned(), "pending".to_owned()), "the update waits for its create");
    assert_eq!(srv.count("PUT", ""), 0, "no update without the create's id");
    assert_eq!(srv.requests().len(), 2, "the failed create and the other entry's create");

    // The create's retry comes (here: asked for), then the update follows it.
    assert_eq!(o.ok("resetForRetry", &[js_sys::Array::of1(&s(&create_id)).into()]).await.as_f64(), Some(1.0));
    o.drained("u1", Some(3), 5000).await;
    let reqs = srv.requests();
    let a_backend = string(&o.entries_of("u1").await.into_iter().find(|e| string(e, "id") == a_id).unwrap(), "backendId");
    let summary: Vec<String> =
        reqs.iter().map(|r| format!("{} {} {}", string(r, "method"), string(r, "path").rsplit('/').next().unwrap(), num(r, "status"))).collect();
    assert_eq!(summary, ["POST progress 503", "POST progress 201", "POST progress 201", format!("PUT {a_backend} 200").as_str()]);
    assert_eq!(string(&reqs[0], "key"), create_id);
    assert_eq!(string(&reqs[2], "key"), create_id, "the create's retry carries its key");
    after_answer(&srv, &reqs[2], &reqs[3]);
    assert_eq!(num(&srv.record(&a_backend), "quantity"), 71.0);
    srv.assert_one_at_a_time();
    finish(&db, &[&o]).await;
}
