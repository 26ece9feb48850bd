//! What the contexts sharing a database tell each other, over a `BroadcastChannel` named after
//! it: every tab, worker and service worker using the same `dbName` hears it (the sender does
//! not). Messages are typed here, encoded with serde on the way out and read field by field on
//! the way in (anything unexpected is ignored).

use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{BroadcastChannel, MessageEvent};

use super::get;
use crate::domain::stats::PassReport;

/// A message between contexts.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// Something of `user` was saved, edited or deleted: its uploader should wake up.
    Saved {
        /// Whose.
        user: String,
    },
    /// Stored state of `user` changed: subscribers should refresh.
    Changed {
        /// Whose.
        user: String,
    },
    /// A visible context of `user` is waiting to upload: a hidden uploader should step down.
    WantLead {
        /// Whose.
        user: String,
    },
    /// A context became the uploader of `user` with generation `gen`: any other stops at once.
    Lead {
        /// Whose.
        user: String,
        /// The new uploader's instance id.
        owner: String,
        /// Its generation.
        gen: f64,
    },
    /// `processNow()` in a follower: the uploader of `user` runs a pass and answers with `id`.
    PassRequest {
        /// Correlates the answer.
        id: String,
        /// Whose.
        user: String,
    },
    /// The uploader's answer to a [`Message::PassRequest`].
    PassDone {
        /// The request's id.
        id: String,
        /// What the pass did.
        report: PassReport,
    },
}

#[derive(Serialize)]
struct Wire<'a> {
    t: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gen: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    counts: Option<[u32; 8]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    offline: Option<bool>,
    /// A pass that stopped early (a later claim failed): its report says `finished: false`.
    #[serde(skip_serializing_if = "Option::is_none")]
    unfinished: Option<bool>,
}

impl Message {
    fn encode(&self) -> Option<JsValue> {
        let mut w = Wire { t: "", user: None, id: None, owner: None, gen: None, counts: None, offline: None, unfinished: None };
        match self {
            Message::Saved { user } => (w.t, w.user) = ("saved", Some(user.as_str())),
            Message::Changed { user } => (w.t, w.user) = ("changed", Some(user.as_str())),
            Message::WantLead { user } => (w.t, w.user) = ("want-lead", Some(user.as_str())),
            Message::Lead { user, owner, gen } => (w.t, w.user, w.owner, w.gen) = ("lead", Some(user.as_str()), Some(owner.as_str()), Some(*gen)),
            Message::PassRequest { id, user } => (w.t, w.user, w.id) = ("pass?", Some(user.as_str()), Some(id.as_str())),
            Message::PassDone { id, report } => {
                (w.t, w.id, w.counts, w.offline, w.unfinished) =
                    ("pass!", Some(id.as_str()), Some(report.counts()), Some(report.offline), Some(report.unfinished))
            }
        }
        serde_wasm_bindgen::to_value(&w).ok()
    }

    fn decode(v: &JsValue) -> Option<Message> {
        let s = |k: &str| get(v, k).as_string();
        Some(match s("t")?.as_str() {
            "saved" => Message::Saved { user: s("user")? },
            "changed" => Message::Changed { user: s("user")? },
            "want-lead" => Message::WantLead { user: s("user")? },
            "lead" => Message::Lead { user: s("user")?, owner: s("owner")?, gen: get(v, "gen").as_f64()? },
            "pass?" => Message::PassRequest { id: s("id")?, user: s("user")? },
            "pass!" => {
                let counts = get(v, "counts").dyn_into::<js_sys::Array>().unwrap_or_default();
                let mut c = [0u32; 8];
                for (i, slot) in c.iter_mut().enumerate() {
                    *slot = counts.get(i as u32).as_f64().unwrap_or(0.0) as u32;
                }
                let flag = |k: &str| get(v, k).as_bool().unwrap_or(false);
                let mut report = PassReport { offline: flag("offline"), unfinished: flag("unfinished"), ..PassReport::default() };
                report.set_counts(c);
                Message::PassDone { id: s("id")?, report }
            }
            _ => return None,
        })
    }
}

/// An open channel; closed (and its listener removed) on drop.
pub struct Channel {
    inner: Option<BroadcastChannel>,
    _listener: Option<Closure<dyn FnMut(MessageEvent)>>,
}

impl Channel {
    /// Joins the channel of database `db_name`; `on_message` gets every message it can read.
    /// Where `BroadcastChannel` is missing, the channel is silent (single-context operation).
    pub fn open(db_name: &str, on_message: impl Fn(Message) + 'static) -> Channel {
        let Ok(inner) = BroadcastChannel::new(&["progress-outbox:", db_name].concat()) else {
            return Channel { inner: None, _listener: None };
        };
        let listener = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            if let Some(m) = Message::decode(&e.data()) {
                on_message(m);
            }
        });
        inner.set_onmessage(Some(listener.as_ref().unchecked_ref()));
        Channel { inner: Some(inner), _listener: Some(listener) }
    }

    /// Tells every other context.
    pub fn post(&self, message: &Message) {
        if let (Some(c), Some(m)) = (&self.inner, message.encode()) {
            let _ = c.post_message(&m);
        }
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        if let Some(c) = &self.inner {
            c.set_onmessage(None);
            c.close();
        }
    }
}
