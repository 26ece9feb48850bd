//! The wire protocol (CONTRACT §2, §2b): what each event sends, how, and what each answer means
//! as an [`Outcome`]. One event per request, or a batch of them to `batchEndpoint`. It never
//! throws: a token function that fails, a hung server or a strange answer are all outcomes the
//! retry policy understands.

use serde::Serialize;
use wasm_bindgen::JsValue;

use crate::domain::batch::{item_outcomes, whole_failure, SizeSignal, FAST_ANSWER_MS};
use crate::domain::config::item_url;
use crate::domain::event::{Operation, OutboxEvent};
use crate::domain::retry::Outcome;
use crate::platform::http::{send, Call, Reply};
use crate::platform::mono;
use crate::platform::token::TokenSource;
use crate::store::queue::Claimed;

/// The HTTP side of the outbox.
pub struct Transport {
    /// Where events go (absolute).
    pub endpoint: String,
    /// Where batches go (absolute), if batching.
    pub batch_endpoint: Option<String>,
    /// Bearer token source.
    pub token: TokenSource,
    /// Each request (and each token call) is given this long.
    pub timeout_ms: u64,
}

/// The body of a create or update (and of a batch item, with its extra fields).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    idempotency_key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    operation: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    backend_id: Option<&'a str>,
    local_id: &'a str,
    user_id: &'a str,
    #[serde(rename = "type")]
    metric: &'static str,
    quantity: f64,
    unit: &'static str,
    date: String,
}

fn body<'a>(e: &'a OutboxEvent, item: Option<&'a Claimed>) -> Body<'a> {
    let b = e.body();
    Body {
        idempotency_key: item.map(|_| e.id.as_str()),
        operation: item.map(|_| e.operation.as_str()),
        backend_id: item.and_then(|c| c.backend_id.as_deref()),
        local_id: b.local_id,
        user_id: b.user_id,
        metric: b.metric.name(),
        quantity: b.quantity,
        unit: b.metric.unit(),
        date: b.date_iso,
    }
}

#[derive(Serialize)]
struct Batch<'a> {
    events: Vec<Body<'a>>,
}

/// One request, before its token.
struct Req<'a> {
    method: &'a str,
    url: &'a str,
    key: Option<&'a str>,
    body: Option<&'a JsValue>,
    batch: bool,
    /// Ask the token function for a fresh token first (the items of a batch answered 401).
    refresh: bool,
}

fn to_js<T: Serialize>(v: &T) -> Option<JsValue> {
    serde_wasm_bindgen::to_value(v).ok()
}

fn outcome(reply: Reply, timeout_ms: u64) -> Outcome {
    match reply {
        Reply::Answer(a) => Outcome::Response { status: a.status, retry_after: a.retry_after, backend_id: a.id, plain: a.plain, body_excerpt: a.excerpt },
        Reply::OpaqueRedirect => Outcome::OpaqueRedirect,
        Reply::Network(m) => Outcome::Network(m),
        Reply::Timeout => Outcome::Timeout(timeout_ms),
    }
}

impl Transport {
    /// A request of `method` to `url`, with the token of `user` (asked again once after a 401).
    /// `None` when `still_wanted` turned false before it went out (logout, lost lead, close).
    async fn request(&self, user: &str, r: Req<'_>, still_wanted: &dyn Fn() -> bool) -> Option<Result<Reply, String>> {
        let mut refreshed = r.refresh;
        loop {
            let token = match self.token.get(user, refreshed, self.timeout_ms).await {
                Ok(t) => t,
                Err(why) => return Some(Err(why)),
            };
            if !still_wanted() {
                return None;
            }
            let reply =
                send(Call { method: r.method, url: r.url, token: token.as_deref(), key: r.key, body: r.body, timeout_ms: self.timeout_ms, batch: r.batch })
                    .await;
            match reply {
                // Asked again with { refresh: true } (a fixed string gives itself again), sent at once.
                Reply::Answer(ref a) if a.status == 401 && !refreshed => refreshed = true,
                other => return Some(Ok(other)),
            }
        }
    }

    /// Uploads one claimed event: `POST {endpoint}`, `PUT {endpoint}/{backendId}` or
    /// `DELETE {endpoint}/{backendId}`, keyed by the event id.
    pub async fn send_one(&self, c: &Claimed, still_wanted: &dyn Fn() -> bool) -> Option<Outcome> {
        let e = &c.event;
        let at_id = |id: &str| item_url(&self.endpoint, &String::from(js_sys::encode_uri_component(id)));
        let (method, url) = match (e.operation, c.backend_id.as_deref()) {
            (Operation::Create, _) => ("POST", self.endpoint.clone()),
            (Operation::Update, Some(id)) => ("PUT", at_id(id)),
            (Operation::Delete, Some(id)) => ("DELETE", at_id(id)),
            // Claims never hand these out (they back off until the create is acknowledged).
            (_, None) => return Some(Outcome::Token("the entry has no backend id yet; nothing was sent".into())),
        };
        let json = if e.operation == Operation::Delete { None } else { to_js(&body(e, None)) };
        let r = Req { method, url: &url, key: Some(&e.id), body: json.as_ref(), batch: false, refresh: false };
        match self.request(&e.user_id, r, still_wanted).await? {
            Ok(reply) => Some(outcome(reply, self.timeout_ms)),
            Err(why) => Some(Outcome::Token(why)),
        }
    }

    /// Uploads claimed events (at most one per entry) in one batch request: one outcome per
    /// item, and what the answer says about the batch size. Items answered 401 are sent once
    /// more at once, in one batch with a fresh token, as a single request's 401 would be; `None`
    /// for those when that second request was no longer wanted (they go back unsent).
    pub async fn send_batch(&self, url: &str, items: &[Claimed], user: &str, still_wanted: &dyn Fn() -> bool) -> Option<(Vec<Option<Outcome>>, SizeSignal)> {
        let all: Vec<&Claimed> = items.iter().collect();
        let (first, signal) = self.batch_once(url, &all, user, still_wanted, false).await?;
        let mut outcomes: Vec<Option<Outcome>> = first.into_iter().map(Some).collect();
        let unauthorized: Vec<usize> = (0..outcomes.len()).filter(|&i| matches!(outcomes[i], Some(Outcome::Response { status: 401, .. }))).collect();
        if !unauthorized.is_empty() {
            let again: Vec<&Claimed> = unauthorized.iter().map(|&i| &items[i]).collect();
            let mut retried = self.batch_once(url, &again, user, still_wanted, true).await.map(|(r, _)| r.into_iter());
            for i in unauthorized {
                outcomes[i] = retried.as_mut().and_then(Iterator::next);
            }
        }
        Some((outcomes, signal))
    }

    async fn batch_once(
        &self,
        url: &str,
        items: &[&Claimed],
        user: &str,
        still_wanted: &dyn Fn() -> bool,
        refresh: bool,
    ) -> Option<(Vec<Outcome>, SizeSignal)> {
        let n = items.len();
        let json = to_js(&Batch { events: items.iter().map(|c| body(&c.event, Some(c))).collect() });
        let started = mono();
        let r = Req { method: "POST", url, key: None, body: json.as_ref(), batch: true, refresh };
        let reply = match self.request(user, r, still_wanted).await? {
            Ok(r) => r,
            Err(why) => return Some((vec![Outcome::Token(why); n], SizeSignal::Neutral)),
        };
        let fast = mono() - started <= FAST_ANSWER_MS;
        Some(match reply {
            Reply::Answer(a) if (200..300).contains(&a.status) => match item_outcomes(n, a.results) {
                Ok(outcomes) => (outcomes, if fast { SizeSignal::Fast(n as u32) } else { SizeSignal::Slow }),
                Err(why) => (vec![whole_failure(a.status, None, why, n); n], SizeSignal::Neutral),
            },
            Reply::Answer(a) => {
                let signal = if a.status == 413 { SizeSignal::TooLarge(n as u32) } else { SizeSignal::Neutral };
                (vec![whole_failure(a.status, a.retry_after, a.excerpt, n); n], signal)
            }
            Reply::Timeout => (vec![Outcome::Timeout(self.timeout_ms); n], SizeSignal::Overloaded),
            other => (vec![outcome(other, self.timeout_ms); n], SizeSignal::Neutral),
        })
    }
}
