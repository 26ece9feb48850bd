//! The failure-mode suite (issue 11): each fault of a hostile browser environment reproduced with a
//! scripted fetch (tests/failures/harness.js), an overridable wall clock (`Date.now`), Web Locks held
//! or stolen from outside and raw IndexedDB. `wasm-pack test --headless --chrome --test failures`
//! (and `--firefox`). Every test uses its own database and deletes it at the end; every wait is
//! bounded, so a call that hangs fails its test instead of the suite.
#![cfg(target_arch = "wasm32")]

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

#[path = "failures/support.rs"]
mod support;

#[path = "failures/redirects.rs"]
mod redirects;

#[path = "failures/token.rs"]
mod token;

#[path = "failures/database.rs"]
mod database;

#[path = "failures/clock.rs"]
mod clock;

#[path = "failures/offline.rs"]
mod offline;

#[path = "failures/lead.rs"]
mod lead;

#[path = "failures/unreadable.rs"]
mod unreadable;

#[path = "failures/set_aside.rs"]
mod set_aside;

#[path = "failures/open_close.rs"]
mod open_close;

#[path = "failures/wire.rs"]
mod wire;
