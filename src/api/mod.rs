//! The HTTP API: GET the state, POST operator actions (behind the bearer token).

use crate::daemon::channels::{ControlTx, Input};
use crate::daemon::status::{Shared, Status};
use crate::daemon::{lock, DECISIONS_KEPT};
use crate::judge::{parse_claim_id, OperatorAction, PeerTrust};
use crate::model::Asn;
use crate::state::{Reader, StoredHold};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ipnet::IpNet;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Deserialize;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// The API's routes.
pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/status", get(status))
        .route("/v1/peers", get(peers))
        .route("/v1/decisions", get(decisions))
        .route("/v1/routes", get(routes))
        .route("/v1/quarantine", get(quarantine))
        .route("/v1/quarantine/{id}/release", post(release))
        .route("/v1/quarantine/{id}/hold", post(hold))
        .route("/v1/act/resume", post(act_resume))
        .route("/v1/actions", get(actions))
        .route("/v1/alerts", get(alerts_api))
        .route("/metrics", get(metrics_text))
        .layer(axum::middleware::from_fn(in_time))
        .with_state(state)
}

/// The webhook outbox and each destination's delivery state, as the API shows them.
pub(crate) type OutboxView = (
    crate::act::outbox::Place,
    Arc<Mutex<Vec<crate::act::outbox::DestinationStatus>>>,
);

#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) shared: Arc<Mutex<Shared>>,
    pub(crate) tx: ControlTx,
    pub(crate) metrics: Option<PrometheusHandle>,
    /// Swapped on SIGHUP.
    pub(crate) token: Arc<std::sync::RwLock<Option<Arc<str>>>>,
    /// The decision log, when there is a state file.
    pub(crate) reader: Option<Arc<Mutex<Reader>>>,
    /// The webhook outbox and each destination's delivery state.
    pub(crate) outbox: Option<OutboxView>,
}

pub(crate) async fn status(State(s): State<AppState>) -> Json<Arc<Status>> {
    let snapshot = lock(&s.shared).status.clone();
    Json(snapshot)
}

pub(crate) async fn peers(State(s): State<AppState>) -> Json<Arc<Vec<PeerTrust>>> {
    let snapshot = lock(&s.shared).trust.clone();
    Json(snapshot)
}

#[derive(Deserialize)]
pub(crate) struct DecisionsQuery {
    /// Decisions with a sequence number above this.
    since: Option<u64>,
    limit: Option<usize>,
}

pub(crate) async fn decisions(
    State(s): State<AppState>,
    Query(q): Query<DecisionsQuery>,
) -> Response {
    from_log(s, Log::Decisions, q).await
}

/// `GET /v1/alerts`: each destination's delivery state and the last 100 alerts.
pub(crate) async fn alerts_api(State(s): State<AppState>) -> Response {
    let Some((place, status)) = s.outbox.clone() else {
        return Json(serde_json::json!({ "destinations": [], "alerts": [] })).into_response();
    };
    let recent = tokio::task::spawn_blocking(move || {
        crate::act::outbox::Outbox::open(&place).and_then(|o| o.recent(100))
    })
    .await;
    match recent {
        Ok(Ok(alerts)) => {
            let destinations = status.lock().unwrap_or_else(|e| e.into_inner()).clone();
            Json(serde_json::json!({ "destinations": destinations, "alerts": alerts }))
                .into_response()
        }
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, format!("outbox: {e}")).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "outbox").into_response(),
    }
}

pub(crate) async fn actions(
    State(s): State<AppState>,
    Query(q): Query<DecisionsQuery>,
) -> Response {
    from_log(s, Log::Actions, q).await
}

/// The two logs the API reads.
#[derive(Clone, Copy)]
pub(crate) enum Log {
    Decisions,
    Actions,
}

/// Rows of a log after `since`: from the state file when there is one, else from memory.
pub(crate) async fn from_log(s: AppState, log: Log, q: DecisionsQuery) -> Response {
    let since = q.since.unwrap_or(0);
    let limit = q.limit.unwrap_or(1000).min(DECISIONS_KEPT);
    let name = match log {
        Log::Decisions => "decision log",
        Log::Actions => "audit log",
    };
    let rows = if let Some(reader) = s.reader.clone() {
        let rows = tokio::task::spawn_blocking(move || {
            let r = reader.lock().unwrap_or_else(|e| e.into_inner());
            match log {
                Log::Decisions => r.decisions(since, limit),
                Log::Actions => r.actions(since, limit),
            }
        })
        .await;
        match rows {
            Ok(Ok(rows)) => rows,
            Ok(Err(e)) => {
                crate::metrics::state_error("read");
                return (StatusCode::INTERNAL_SERVER_ERROR, format!("{name}: {e}")).into_response();
            }
            Err(_) => return (StatusCode::INTERNAL_SERVER_ERROR, name).into_response(),
        }
    } else {
        let sh = lock(&s.shared);
        match log {
            Log::Decisions => sh
                .decisions
                .iter()
                .filter(|d| d.seq > since)
                .take(limit)
                .map(|d| serde_json::to_string(d).unwrap_or_default())
                .collect(),
            Log::Actions => sh
                .actions
                .iter()
                .filter(|a| a.seq > since)
                .take(limit)
                .map(|a| serde_json::to_string(a).unwrap_or_default())
                .collect(),
        }
    };
    (
        [("content-type", "application/json")],
        format!("[{}]", rows.join(",")),
    )
        .into_response()
}

#[derive(Deserialize)]
pub(crate) struct RoutesQuery {
    prefix: String,
    /// `65001` or `AS65001`.
    origin: Option<String>,
}

pub(crate) async fn routes(State(s): State<AppState>, Query(q): Query<RoutesQuery>) -> Response {
    let origin = match q.origin.as_deref().map(str::parse::<Asn>) {
        None => None,
        Some(Ok(a)) => Some(a),
        Some(Err(_)) => {
            return (StatusCode::BAD_REQUEST, "origin: not an AS number").into_response()
        }
    };
    let Ok(prefix) = q.prefix.parse::<IpNet>() else {
        return (
            StatusCode::BAD_REQUEST,
            format!("not a prefix: {}", q.prefix),
        )
            .into_response();
    };
    let (reply, answer) = oneshot::channel();
    if s.tx
        .send(Input::Routes {
            prefix: prefix.trunc(),
            origin,
            reply,
        })
        .is_err()
    {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    match tokio::time::timeout(Duration::from_secs(5), answer).await {
        Ok(Ok(v)) => Json(v).into_response(),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "the judge is busy").into_response(),
    }
}

pub(crate) async fn metrics_text(State(s): State<AppState>) -> Response {
    match &s.metrics {
        Some(h) => ([("content-type", "text/plain; version=0.0.4")], h.render()).into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics recorder not installed",
        )
            .into_response(),
    }
}

pub(crate) async fn quarantine(State(s): State<AppState>) -> Response {
    let (reply, answer) = oneshot::channel();
    if s.tx.send(Input::Held { reply }).is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    let held = match tokio::time::timeout(Duration::from_secs(5), answer).await {
        Ok(Ok(v)) => v,
        _ => return (StatusCode::SERVICE_UNAVAILABLE, "the judge is busy").into_response(),
    };
    // Then the routes held at the last stop that their routers have not sent again yet.
    let mut out = serde_json::to_value(held).unwrap_or_default();
    if let Some(list) = out.as_array_mut() {
        let sh = lock(&s.shared);
        let mut restored: Vec<&StoredHold> = sh.restored.values().collect();
        restored.sort_by_key(|h| h.seq);
        for h in restored {
            let mut v = serde_json::to_value(h).unwrap_or_default();
            v["restored"] = serde_json::Value::Bool(true);
            list.push(v);
        }
    }
    Json(out).into_response()
}

#[derive(Deserialize, Default)]
pub(crate) struct OperatorBody {
    /// Who and why, recorded in the decision.
    note: Option<String>,
}

pub(crate) async fn release(
    State(s): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
    req: axum::extract::Request,
) -> Response {
    operator(s, id, OperatorAction::Release, req).await
}

pub(crate) async fn hold(
    State(s): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
    req: axum::extract::Request,
) -> Response {
    operator(s, id, OperatorAction::Hold, req).await
}

/// The largest body a hold or release takes (a note).
const NOTE_BODY_MAX: usize = 64 * 1024;

/// How long a request may take, its body included (a client that sends its body byte by
/// byte holds nothing for longer).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Every request within [`REQUEST_TIMEOUT`], else 408.
async fn in_time(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(req)).await {
        Ok(r) => r,
        Err(_) => (StatusCode::REQUEST_TIMEOUT, "the request took too long").into_response(),
    }
}

pub(crate) async fn act_resume(
    State(s): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Response {
    if let Err(r) = authorised(&s, &headers, "resuming acting") {
        return r;
    }
    let (reply, answer) = oneshot::channel();
    if s.tx.send(Input::ActResume { reply }).is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    match tokio::time::timeout(Duration::from_secs(5), answer).await {
        Ok(Ok(was)) => {
            Json(serde_json::json!({ "resumed": true, "was_stopped": was })).into_response()
        }
        _ => (StatusCode::SERVICE_UNAVAILABLE, "the judge is busy").into_response(),
    }
}

/// The bearer token check of every POST; the refusal when it fails.
#[allow(clippy::result_large_err)]
pub(crate) fn authorised(
    s: &AppState,
    headers: &axum::http::HeaderMap,
    what: &str,
) -> Result<(), Response> {
    let token = s.token.read().unwrap_or_else(|e| e.into_inner()).clone();
    let Some(token) = &token else {
        return Err((
            StatusCode::FORBIDDEN,
            format!("no API token is configured (--api-token-file): {what} is refused"),
        )
            .into_response());
    };
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !same_secret(given.as_bytes(), token.as_bytes()) {
        return Err((
            StatusCode::UNAUTHORIZED,
            [("www-authenticate", "Bearer")],
            "a valid bearer token is required",
        )
            .into_response());
    }
    Ok(())
}

/// Compares in time independent of where they differ (the token is a secret).
pub(crate) fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A hold or release: the token is checked before a byte of the body is read (a client
/// without it cannot make the daemon hold its body in memory).
pub(crate) async fn operator(
    s: AppState,
    id: String,
    action: OperatorAction,
    req: axum::extract::Request,
) -> Response {
    if let Err(r) = authorised(&s, req.headers(), "holds and releases") {
        return r;
    }
    let body = match axum::body::to_bytes(req.into_body(), NOTE_BODY_MAX).await {
        Ok(b) => b,
        Err(e) => {
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body: {e} (at most {NOTE_BODY_MAX} bytes)"),
            )
                .into_response()
        }
    };
    let Some((prefix, origin)) = parse_claim_id(&id) else {
        return (
            StatusCode::BAD_REQUEST,
            format!("not a claim id (ADDRESS-LENGTH-ASn or ...-AS_SET): {id}"),
        )
            .into_response();
    };
    let note = if body.is_empty() {
        None
    } else {
        match serde_json::from_slice::<OperatorBody>(&body) {
            Ok(b) => b.note,
            Err(e) => return (StatusCode::BAD_REQUEST, format!("body: {e}")).into_response(),
        }
    }
    .unwrap_or_else(|| "through the API".to_string());
    let (reply, answer) = oneshot::channel();
    let input = Input::Operator {
        prefix,
        origin,
        action,
        note,
        reply,
    };
    if s.tx.send(input).is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    match tokio::time::timeout(Duration::from_secs(5), answer).await {
        Ok(Ok(Ok(Some(n)))) => {
            Json(serde_json::json!({ "id": id, "action": action, "routes": n })).into_response()
        }
        Ok(Ok(Ok(None))) => {
            (StatusCode::NOT_FOUND, format!("no such claim now: {id}")).into_response()
        }
        // Not recorded: said so, never a 200 that a restart would undo.
        Ok(Ok(Err(why))) => (StatusCode::SERVICE_UNAVAILABLE, why).into_response(),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "the judge is busy").into_response(),
    }
}

/// How long a client has to send a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `stop`: HTTP/1.1, at most `max_connections` at once
/// (more wait in the kernel's backlog), each given [`HEADER_TIMEOUT`] to send its
/// headers and [`REQUEST_TIMEOUT`] for the rest. (axum's own `serve` sets neither: a
/// hundred half-open requests held their connections for a minute and more.)
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    max_connections: usize,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let permits = Arc::new(tokio::sync::Semaphore::new(max_connections.max(1)));
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = stop.changed() => break,
        };
        let (stream, _) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("API accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let mut stop = stop.clone();
        conns.spawn(async move {
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT);
            let conn = http.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.changed() => {
                    // Answer what is in flight, take nothing new.
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            drop(permit);
        });
        while conns.try_join_next().is_some() {}
    }
    while conns.join_next().await.is_some() {}
}
