//! Unit tests of `domain::health`: each state reached and left.

use super::*;

const NOW: TimeMs = 1_795_678_200_000;
const T: Thresholds = Thresholds { failing_after: 3, stalled_after_ms: 60_000 };

fn calm() -> Signals {
    Signals { online: true, started: true, gave_up: 0, failed_in_a_row: 0, oldest_pending_at: None, now: NOW }
}

#[test]
fn each_state() {
    assert_eq!(judge(calm(), T), Health::Ok);
    assert_eq!(judge(Signals { online: false, gave_up: 9, ..calm() }, T), Health::Offline, "offline wins");
    assert_eq!(judge(Signals { gave_up: 1, ..calm() }, T), Health::Failing);
    assert_eq!(judge(Signals { failed_in_a_row: 2, ..calm() }, T), Health::Ok);
    assert_eq!(judge(Signals { failed_in_a_row: 3, ..calm() }, T), Health::Failing);
    assert_eq!(judge(Signals { oldest_pending_at: Some(NOW - 60_000), ..calm() }, T), Health::Ok);
    assert_eq!(judge(Signals { oldest_pending_at: Some(NOW - 60_001), ..calm() }, T), Health::Stalled);
    assert_eq!(judge(Signals { started: false, oldest_pending_at: Some(NOW - 600_000), ..calm() }, T), Health::Ok, "not started: not stalled");
    assert_eq!(judge(Signals { failed_in_a_row: 5, oldest_pending_at: Some(0), ..calm() }, T), Health::Failing, "failing before stalled");
    let names: Vec<&str> = [Health::Ok, Health::Offline, Health::Failing, Health::Stalled].iter().map(|h| h.as_str()).collect();
    assert_eq!(names, ["ok", "offline", "failing", "stalled"]);
}
