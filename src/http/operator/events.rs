//! `GET /v1/events`: server-sent events for the console (`message`, `status`, `conversation`).
//! Each event's data is JSON naming the conversation; the console then reads what changed
//! through the API. A console that falls behind skips events (it refreshes on the next one).

use super::auth::Operator;
use crate::http::AppState;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use std::convert::Infallible;
use tokio::sync::broadcast::error::RecvError;

pub async fn stream(
    _: Operator,
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = state.handoff.events.subscribe();
    let stop = state.handoff.stopping();
    let events = futures_util::stream::unfold((rx, stop), |(mut rx, stop)| async move {
        loop {
            let received = tokio::select! {
                _ = stop.cancelled() => return None,
                received = rx.recv() => received,
            };
            match received {
                Ok(event) => {
                    let sse = Event::default()
                        .event(event.kind)
                        .data(event.data.to_string());
                    return Some((Ok(sse), (rx, stop)));
                }
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return None,
            }
        }
    });
    // A first event tells the console the stream is live.
    let hello =
        futures_util::stream::once(async { Ok(Event::default().event("ready").data("{}")) });
    Sse::new(futures_util::StreamExt::chain(hello, events)).keep_alive(KeepAlive::default())
}
