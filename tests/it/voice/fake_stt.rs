//! A fake speech-to-text server: a real axum server on 127.0.0.1:0 that parses each multipart
//! upload the way OpenAI's `/audio/transcriptions` and whisper.cpp's `/inference` do, records
//! it, and answers through a closure (a `{"text"}` reply, an error, or a slow answer).

use crate::support::fake_llm::Reply;
use axum::body::Body;
use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The uploaded `file` part.
#[derive(Debug, Clone)]
pub struct FilePart {
    pub file_name: Option<String>,
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

/// One upload as the fake parsed it.
#[derive(Debug, Clone)]
pub struct Upload {
    pub path: String,
    pub authorization: Option<String>,
    /// The text fields (`model`, `language`, `response_format`, ...).
    pub fields: BTreeMap<String, String>,
    pub file: Option<FilePart>,
}

type Answer = dyn Fn(&Upload) -> Reply + Send + Sync;

#[derive(Clone)]
struct Shared {
    uploads: Arc<Mutex<Vec<Upload>>>,
    answer: Arc<Answer>,
}

/// A running fake transcription server.
pub struct FakeStt {
    /// `http://127.0.0.1:PORT`, to use as `endpoint` (whisper.cpp) or `endpoint` + `/v1`.
    pub url: String,
    uploads: Arc<Mutex<Vec<Upload>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeStt {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeStt {
    /// Answers every upload with `answer(upload)`.
    pub async fn start(answer: impl Fn(&Upload) -> Reply + Send + Sync + 'static) -> FakeStt {
        let shared = Shared {
            uploads: Arc::new(Mutex::new(Vec::new())),
            answer: Arc::new(answer),
        };
        let uploads = shared.uploads.clone();
        let app = axum::Router::new().fallback(handle).with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a port");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeStt { url, uploads, task }
    }

    /// Always answers `{"text": text}`.
    pub async fn saying(text: &str) -> FakeStt {
        let text = text.to_owned();
        FakeStt::start(move |_| says(&text)).await
    }

    /// Every upload so far, in arrival order.
    pub fn uploads(&self) -> Vec<Upload> {
        self.uploads.lock().expect("uploads lock").clone()
    }
}

/// A 200 `{"text": text}` answer, as both providers give it.
pub fn says(text: &str) -> Reply {
    Reply::json(json!({ "text": text }))
}

async fn handle(
    State(shared): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> Response {
    let mut upload = Upload {
        path: uri.path().to_owned(),
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        fields: BTreeMap::new(),
        file: None,
    };
    while let Ok(Some(field)) = multipart.next_field().await {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            let file_name = field.file_name().map(str::to_owned);
            let content_type = field.content_type().map(str::to_owned);
            let bytes = field.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
            upload.file = Some(FilePart {
                file_name,
                content_type,
                bytes,
            });
        } else {
            let value = field.text().await.unwrap_or_default();
            upload.fields.insert(name, value);
        }
    }
    let reply = (shared.answer)(&upload);
    shared.uploads.lock().expect("uploads lock").push(upload);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response =
        Response::builder().status(StatusCode::from_u16(reply.status).expect("valid status"));
    for (name, value) in &reply.headers {
        response = response.header(name, value);
    }
    response
        .body(Body::from(reply.body))
        .expect("valid response")
}
