//! Every metric the daemon exports, with its labels, in one place.
//!
//! Code that counts something calls a function here rather than naming a metric itself, so
//! a name or a label cannot drift between the place that sets it and the place that reads
//! it (dashboards, the alerting rules), and [`describe`] gives each one its help text on
//! `/metrics`. Names follow Prometheus' conventions: `routewitness_` prefix, `_total` for
//! counters, base units.

use ::metrics::{counter, describe_counter, describe_gauge, gauge, Counter};

const BMP_ERRORS: &str = "routewitness_bmp_errors_total";
const BMP_SESSION_UP: &str = "routewitness_bmp_session_up";
const BMP_MESSAGES: &str = "routewitness_bmp_messages_total";
const BMP_MESSAGES_BY_TYPE: &str = "routewitness_bmp_messages_by_type_total";
const STATE_ERRORS: &str = "routewitness_state_errors_total";
const DECISIONS: &str = "routewitness_decisions_total";
const DECISIONS_BY_OUTCOME: &str = "routewitness_decisions_by_outcome_total";
const ALERTS: &str = "routewitness_alerts_total";
const ROUTES_STORED: &str = "routewitness_routes_stored";
const PEERS: &str = "routewitness_peers";
const ANNOUNCEMENTS: &str = "routewitness_route_announcements_total";
const WITHDRAWALS: &str = "routewitness_route_withdrawals_total";
const QUARANTINE_CHANGES: &str = "routewitness_act_quarantine_changes_total";
const QUARANTINED_CLAIMS: &str = "routewitness_act_quarantined_claims";
const ACT_STOPPED: &str = "routewitness_act_stopped";
const ACT_VERIFICATIONS: &str = "routewitness_act_verifications_total";
const RPKI_VRPS: &str = "routewitness_rpki_vrps";
const RPKI_OBJECTS: &str = "routewitness_rpki_objects";
const RPKI_ERRORS: &str = "routewitness_rpki_errors_total";
const RPKI_FREEZES: &str = "routewitness_rpki_freezes_total";
const RELOADS: &str = "routewitness_reloads_total";
const RTR_SERVER_SERIAL: &str = "routewitness_rtr_server_serial";
const RTR_SERVER_ERRORS: &str = "routewitness_rtr_server_errors_total";
const RTR_SERVER_CLIENTS: &str = "routewitness_rtr_server_clients";
const RTR_SERVER_RESETS: &str = "routewitness_rtr_server_resets_total";
const ALERTS_SENT: &str = "routewitness_alerts_sent_total";
const ALERTS_PENDING: &str = "routewitness_alerts_pending";
const ALERTS_FAILED_ATTEMPTS: &str = "routewitness_alerts_failed_attempts_total";
const ALERTS_DEAD: &str = "routewitness_alerts_dead_total";
const ROUTES_REFUSED: &str = "routewitness_routes_refused_total";
const STATE_DEGRADED: &str = "routewitness_state_degraded";

/// Gives every metric its help text (call once, after the recorder is installed).
pub fn describe() {
    describe_counter!(
        BMP_ERRORS,
        "BMP input refused or skipped, by kind (accept, session_cap, not_allowed, initiation_timeout, idle_timeout, clock_skew, read, truncated_at_close, or the decoder's error kind)"
    );
    describe_gauge!(
        BMP_SESSION_UP,
        "1 while a router's BMP session is up, by router"
    );
    describe_counter!(BMP_MESSAGES, "BMP messages received");
    describe_counter!(
        BMP_MESSAGES_BY_TYPE,
        "BMP messages received, by message type"
    );
    describe_counter!(STATE_ERRORS, "State file operations that failed, by kind");
    describe_counter!(DECISIONS, "Decisions written to the state");
    describe_counter!(DECISIONS_BY_OUTCOME, "Decisions taken, by outcome");
    describe_counter!(ALERTS, "Alerts raised");
    describe_gauge!(ROUTES_STORED, "Routes in the Adj-RIB-In");
    describe_gauge!(PEERS, "Peers seen");
    describe_counter!(ANNOUNCEMENTS, "Route announcements received");
    describe_counter!(WITHDRAWALS, "Route withdrawals received");
    describe_counter!(
        QUARANTINE_CHANGES,
        "Quarantine changes, by change (added, released)"
    );
    describe_gauge!(
        QUARANTINED_CLAIMS,
        "Claims in the quarantine, by state (held, served)"
    );
    describe_gauge!(ACT_STOPPED, "1 while a cap has stopped acting on routers");
    describe_counter!(
        ACT_VERIFICATIONS,
        "Verifications of changes at routers, by target and result"
    );
    describe_gauge!(RPKI_VRPS, "VRPs from each RPKI source");
    describe_gauge!(
        RPKI_OBJECTS,
        "RPKI objects in a repository source, by state"
    );
    describe_counter!(RPKI_ERRORS, "RPKI source loads that failed, by source");
    describe_counter!(RPKI_FREEZES, "Sudden losses of VRPs held off");
    describe_counter!(RELOADS, "SIGHUP reloads, by result");
    describe_gauge!(RTR_SERVER_SERIAL, "Serial of each RTR feed served");
    describe_counter!(
        RTR_SERVER_ERRORS,
        "RTR server connections refused or failed, by feed and kind"
    );
    describe_gauge!(RTR_SERVER_CLIENTS, "Routers connected to each RTR feed");
    describe_counter!(RTR_SERVER_RESETS, "Reset Queries answered, by feed");
    describe_counter!(ALERTS_SENT, "Alerts delivered, by destination");
    describe_gauge!(
        ALERTS_PENDING,
        "Alerts waiting for delivery, by destination"
    );
    describe_counter!(
        ALERTS_FAILED_ATTEMPTS,
        "Failed delivery attempts, by destination"
    );
    describe_counter!(ALERTS_DEAD, "Alerts given up on, by destination");
    describe_gauge!(
        STATE_DEGRADED,
        "1 while the state file cannot be written (decisions wait in memory, acting stops)"
    );
    describe_counter!(
        ROUTES_REFUSED,
        "New routes refused at a max-prefix limit, by limit (peer, router)"
    );
}

// BMP sessions.

/// A BMP connection, stream or message refused or skipped, by `kind`.
pub fn bmp_error(kind: &'static str) {
    counter!(BMP_ERRORS, "kind" => kind).increment(1);
}

/// `n` BMP messages whose timestamps were outside the allowed skew (judged at arrival).
pub fn bmp_clock_skewed(n: u64) {
    counter!(BMP_ERRORS, "kind" => "clock_skew").increment(n);
}

/// The state file cannot be written (`true`), or can again.
pub fn state_degraded(degraded: bool) {
    gauge!(STATE_DEGRADED).set(if degraded { 1.0 } else { 0.0 });
}

/// `n` new routes refused at the max-prefix limit of `limit` (`peer` or `router`).
pub fn routes_refused(limit: &'static str, n: u64) {
    counter!(ROUTES_REFUSED, "limit" => limit).increment(n);
}

/// A BMP session from the router at `router` (its address, not its port) came up or
/// ended: the gauge counts the sessions open from it (1 for a router that is up, 0 after
/// it left, whatever port it reconnects from).
pub fn bmp_session_up(router: &str, up: bool) {
    let g = gauge!(BMP_SESSION_UP, "router" => router.to_string());
    if up {
        g.increment(1.0);
    } else {
        g.decrement(1.0);
    }
}

/// The BMP message counter (a session keeps the handle).
pub fn bmp_messages() -> Counter {
    counter!(BMP_MESSAGES)
}

/// BMP messages received of `kind`, in all (a running total).
pub fn bmp_messages_by_type(kind: &'static str, total: u64) {
    counter!(BMP_MESSAGES_BY_TYPE, "type" => kind).absolute(total);
}

// The pipeline and the state.

/// A state operation of `kind` failed.
pub fn state_error(kind: &str) {
    counter!(STATE_ERRORS, "kind" => kind.to_string()).increment(1);
}

/// `n` decisions written.
pub fn decisions_written(n: usize) {
    counter!(DECISIONS).increment(n as u64);
}

/// Decisions with `outcome`, in all (a running total).
pub fn decisions_by_outcome(outcome: &'static str, total: u64) {
    counter!(DECISIONS_BY_OUTCOME, "outcome" => outcome).absolute(total);
}

/// `n` alerts raised.
pub fn alerts_raised(n: usize) {
    counter!(ALERTS).increment(n as u64);
}

/// The Adj-RIB-In's size and the announcements and withdrawals received so far.
pub fn routes(stored: usize, peers: usize, announcements: u64, withdrawals: u64) {
    gauge!(ROUTES_STORED).set(stored as f64);
    gauge!(PEERS).set(peers as f64);
    counter!(ANNOUNCEMENTS).absolute(announcements);
    counter!(WITHDRAWALS).absolute(withdrawals);
}

// Acting.

/// A quarantine feed change: claims added and released.
pub fn quarantine_changed(added: u64, released: u64) {
    counter!(QUARANTINE_CHANGES, "change" => "added").increment(added);
    counter!(QUARANTINE_CHANGES, "change" => "released").increment(released);
}

/// Claims held and served now, and whether a cap has stopped acting.
pub fn quarantine(held: usize, served: usize, stopped: bool) {
    gauge!(QUARANTINED_CLAIMS, "state" => "held").set(held as f64);
    gauge!(QUARANTINED_CLAIMS, "state" => "served").set(served as f64);
    gauge!(ACT_STOPPED).set(if stopped { 1.0 } else { 0.0 });
}

/// A change verified at `target` with `result`.
pub fn verification(target: &str, result: &str) {
    counter!(ACT_VERIFICATIONS, "target" => target.to_string(), "result" => result.to_string())
        .increment(1);
}

// RPKI.

/// VRPs from `source` now.
pub fn rpki_vrps(source: &str, n: usize) {
    gauge!(RPKI_VRPS, "source" => source.to_string()).set(n as f64);
}

/// Objects of a repository `source` in `state`.
pub fn rpki_objects(source: &str, state: &'static str, n: usize) {
    gauge!(RPKI_OBJECTS, "source" => source.to_string(), "state" => state).set(n as f64);
}

/// A load of `source` failed.
pub fn rpki_error(source: &str) {
    counter!(RPKI_ERRORS, "source" => source.to_string()).increment(1);
}

/// A sudden loss of VRPs was held off.
pub fn rpki_freeze() {
    counter!(RPKI_FREEZES).increment(1);
}

/// A SIGHUP reload ended with `result`.
pub fn reload(result: &'static str) {
    counter!(RELOADS, "result" => result).increment(1);
}

// The RTR server.

/// `feed`'s serial now.
pub fn rtr_server_serial(feed: &str, serial: u32) {
    gauge!(RTR_SERVER_SERIAL, "feed" => feed.to_string()).set(f64::from(serial));
}

/// A router connection to `feed` refused or failed, by `kind`.
pub fn rtr_server_error(feed: &str, kind: &'static str) {
    counter!(RTR_SERVER_ERRORS, "feed" => feed.to_string(), "kind" => kind).increment(1);
}

/// A router connected to (`+1`) or left (`-1`) `feed`.
pub fn rtr_server_clients(feed: &str, delta: f64) {
    gauge!(RTR_SERVER_CLIENTS, "feed" => feed.to_string()).increment(delta);
}

/// A Reset Query answered on `feed`.
pub fn rtr_server_reset(feed: &str) {
    counter!(RTR_SERVER_RESETS, "feed" => feed.to_string()).increment(1);
}

// Alert delivery.

/// An alert delivered to `destination`.
pub fn alert_sent(destination: &str) {
    counter!(ALERTS_SENT, "destination" => destination.to_string()).increment(1);
}

/// Alerts waiting for `destination`.
pub fn alerts_pending(destination: &str, n: u64) {
    gauge!(ALERTS_PENDING, "destination" => destination.to_string()).set(n as f64);
}

/// A delivery attempt to `destination` failed.
pub fn alert_attempt_failed(destination: &str) {
    counter!(ALERTS_FAILED_ATTEMPTS, "destination" => destination.to_string()).increment(1);
}

/// An alert to `destination` was given up on.
pub fn alert_dead(destination: &str) {
    counter!(ALERTS_DEAD, "destination" => destination.to_string()).increment(1);
}
