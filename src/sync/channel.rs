//! Cross-context messages over a `BroadcastChannel` named after the database: every tab,
//! worker and service worker using the same `dbName` hears them (the sender does not).

use js_sys::Object;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{BroadcastChannel, MessageEvent};

use crate::platform::{get, set};

/// What contexts tell each other.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A measurement of `user` was saved: its uploader should wake up.
    Saved {
        /// Whose.
        user: String,
    },
    /// Stored state of `user` changed: subscribers should refresh.
    Changed {
        /// Whose.
        user: String,
    },
    /// A visible context of `user` is waiting to upload: a hidden leader should step down.
    WantLead {
        /// Whose.
        user: String,
    },
    /// `processNow()` in a follower: the leader of `user` runs a pass and answers with `id`.
    PassRequest {
        /// Correlates the answer.
        id: String,
        /// Whose.
        user: String,
    },
    /// The leader's answer to a [`Message::PassRequest`]: the pass report as a plain object.
    PassDone {
        /// The request's id.
        id: String,
        /// The report.
        report: JsValue,
    },
}

impl Message {
    fn encode(&self) -> JsValue {
        let o: JsValue = Object::new().into();
        let (t, user, id) = match self {
            Message::Saved { user } => ("saved", Some(user), None),
            Message::Changed { user } => ("changed", Some(user), None),
            Message::WantLead { user } => ("want-lead", Some(user), None),
            Message::PassRequest { id, user } => ("pass?", Some(user), Some(id)),
            Message::PassDone { id, report } => {
                set(&o, "report", report);
                ("pass!", None, Some(id))
            }
        };
        set(&o, "t", &JsValue::from_str(t));
        if let Some(u) = user {
            set(&o, "user", &JsValue::from_str(u));
        }
        if let Some(i) = id {
            set(&o, "id", &JsValue::from_str(i));
        }
        o
    }

    fn decode(v: &JsValue) -> Option<Message> {
        let s = |k: &str| get(v, k).as_string();
        Some(match s("t")?.as_str() {
            "saved" => Message::Saved { user: s("user")? },
            "changed" => Message::Changed { user: s("user")? },
            "want-lead" => Message::WantLead { user: s("user")? },
            "pass?" => Message::PassRequest { id: s("id")?, user: s("user")? },
            "pass!" => Message::PassDone { id: s("id")?, report: get(v, "report") },
            _ => return None,
        })
    }
}

/// An open channel; closed on drop.
pub struct Channel {
    inner: Option<BroadcastChannel>,
    _listener: Option<Closure<dyn FnMut(MessageEvent)>>,
}

impl Channel {
    /// Joins the channel of database `db_name`; `on_message` gets every decodable message.
    /// Where `BroadcastChannel` is missing, the channel is silent (single-context operation).
    pub fn open(db_name: &str, on_message: impl Fn(Message) + 'static) -> Channel {
        let Ok(inner) = BroadcastChannel::new(&format!("progress-outbox:{db_name}")) else {
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
        if let Some(c) = &self.inner {
            let _ = c.post_message(&message.encode());
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
