//! The web view: an axum [`Router`] serving the page, the view as JSON, the live stream of
//! changes (server-sent events) and the answers to escalations; and [`StudioServer`], that
//! router listening on its own address.
//!
//! | route | what |
//! |---|---|
//! | `GET /` | the page |
//! | `GET /api/view` | the [`View`](crate::View) now, as JSON |
//! | `GET /api/events` | server-sent events, one [`Frame`](crate::Frame) each: a snapshot, then changes |
//! | `POST /api/escalations/{id}/answer` | `{"text": "..."}`: answers a waiting escalation |
//!
//! Every route wants the studio's [token](crate::Studio::token): as `?token=`, as
//! `Authorization: Bearer`, or in the cookie the page sets when it is opened with `?token=`
//! (`HttpOnly`, `SameSite=Strict`, so other sites cannot use it). Without it: `401`.

use std::convert::Infallible;
use std::net::SocketAddr;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use serde::Deserialize;
use tokio::sync::watch;

use crate::error::{AnswerError, ServeError};
use crate::studio::Studio;

const PAGE: &str = include_str!("page.html");
const COOKIE: &str = "warden_studio_token";

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

#[derive(Deserialize)]
struct AnswerBody {
    text: String,
}

#[derive(Clone)]
struct AppState {
    studio: Studio,
    closed: watch::Receiver<bool>,
}

impl Studio {
    /// The web view as a router, to serve alone ([`serve`](Self::serve)) or to mount in an
    /// application's own (`Router::new().nest("/studio", studio.router())`). Its event streams
    /// end when [`close_viewers`](Self::close_viewers) is called, so a graceful shutdown of the
    /// server does not wait for them.
    pub fn router(&self) -> Router {
        let state = AppState {
            studio: self.clone(),
            closed: self.inner.closed.subscribe(),
        };
        Router::new()
            .route("/", get(page))
            .route("/api/view", get(view))
            .route("/api/events", get(events))
            .route("/api/escalations/{id}/answer", post(answer))
            .with_state(state)
    }

    /// Ends every viewer's event stream, now and for good: before a graceful shutdown of the
    /// server that mounts [`router`](Self::router).
    pub fn close_viewers(&self) {
        self.inner.closed.send_replace(true);
    }

    /// Serves the web view on `addr` (`127.0.0.1:0` picks a free port on loopback; listen
    /// elsewhere only behind something that adds TLS). Print [`StudioServer::url`]: it
    /// carries the token.
    ///
    /// # Errors
    ///
    /// [`ServeError::Bind`] if `addr` cannot be bound.
    pub async fn serve(&self, addr: &str) -> Result<StudioServer, ServeError> {
        let bind_error = |source| ServeError::Bind {
            addr: addr.to_owned(),
            source,
        };
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(bind_error)?;
        let local = listener.local_addr().map_err(bind_error)?;
        let (stop, mut stopped) = watch::channel(false);
        let app = self.router();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            if let Err(error) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
                tracing::error!(target: "warden::studio", %error, "studio server failed");
            }
        });
        let server = StudioServer {
            addr: local,
            token: self.token().to_owned(),
            studio: self.clone(),
            stop,
            task,
        };
        tracing::info!(target: "warden::studio", url = %server.url(), "studio listening");
        Ok(server)
    }
}

/// A [`Studio`] served on an address of its own.
#[derive(Debug)]
pub struct StudioServer {
    addr: SocketAddr,
    token: String,
    studio: Studio,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl StudioServer {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The page's address, with the token: `http://127.0.0.1:PORT/?token=...`.
    pub fn url(&self) -> String {
        format!("http://{}/?token={}", self.addr, self.token)
    }

    /// Stops listening, ends the viewers' streams and waits for the server to finish.
    pub async fn shutdown(self) {
        self.studio.close_viewers();
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Whether the request carries the token, by query, bearer header or cookie.
fn authorized(studio: &Studio, headers: &HeaderMap, query: &TokenQuery) -> bool {
    let token = studio.token();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .next();
    [query.token.as_deref(), bearer, cookie]
        .into_iter()
        .flatten()
        .any(|given| same(given.as_bytes(), token.as_bytes()))
}

/// Compares in time that does not depend on where the strings differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        "the studio wants its token: open the URL it printed\n",
    )
        .into_response()
}

async fn page(State(state): State<AppState>, headers: HeaderMap, Query(query): Query<TokenQuery>) -> Response {
    if !authorized(&state.studio, &headers, &query) {
        return unauthorized();
    }
    let cookie = format!("{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/", state.studio.token());
    (
        [(header::SET_COOKIE, cookie), (header::CACHE_CONTROL, "no-store".into())],
        Html(PAGE),
    )
        .into_response()
}

async fn view(State(state): State<AppState>, headers: HeaderMap, Query(query): Query<TokenQuery>) -> Response {
    if !authorized(&state.studio, &headers, &query) {
        return unauthorized();
    }
    Json(state.studio.view()).into_response()
}

async fn events(State(state): State<AppState>, headers: HeaderMap, Query(query): Query<TokenQuery>) -> Response {
    if !authorized(&state.studio, &headers, &query) {
        return unauthorized();
    }
    let mut closed = state.closed.clone();
    if *closed.borrow() {
        return (StatusCode::SERVICE_UNAVAILABLE, "the studio is closing\n").into_response();
    }
    let viewer = state.studio.subscribe();
    let frames = futures::stream::unfold(viewer, |mut viewer| async move {
        let json = viewer.next_json().await?;
        Some((Ok::<_, Infallible>(Event::default().data(&*json)), viewer))
    });
    let until_closed = async move {
        let _ = closed.wait_for(|c| *c).await;
    };
    Sse::new(frames.take_until(Box::pin(until_closed)))
        .keep_alive(KeepAlive::default())
        .into_response()
}

async fn answer(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
    Path(id): Path<u64>,
    Json(body): Json<AnswerBody>,
) -> Response {
    if !authorized(&state.studio, &headers, &query) {
        return unauthorized();
    }
    match state.studio.answer(id, &body.text).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e @ AnswerError::Unknown(_)) => (StatusCode::NOT_FOUND, format!("{e}\n")).into_response(),
        Err(e @ AnswerError::AskerGone(_)) => (StatusCode::GONE, format!("{e}\n")).into_response(),
        Err(e) => (StatusCode::BAD_GATEWAY, format!("{e}\n")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"ab"));
    }
}
