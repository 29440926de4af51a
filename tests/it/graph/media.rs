//! Inbound media through the Graph client: metadata, download with the bearer header, and the
//! size limits that keep a large or lying media server from filling our memory.

use crate::support::fake_graph::{
    fast_options, FakeGraph, FakeMedia, MediaBody, FAKE_TOKEN, FAKE_VERSION,
};
use serde_json::json;
use wagate::whatsapp::graph::{GraphClient, MediaError, MediaKind};

fn client(fake: &FakeGraph) -> GraphClient {
    GraphClient::with_options(&fake.channel(), fast_options()).expect("client")
}

#[tokio::test]
async fn media_is_looked_up_then_downloaded_with_the_bearer_header() {
    let fake = FakeGraph::start().await;
    let photo: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
    fake.add_media("987654321", FakeMedia::honest("image/jpeg", photo.clone()));

    let graph = client(&fake);
    let limit = graph.media_limit(MediaKind::Image);
    let (info, bytes) = graph
        .fetch_media("987654321", limit)
        .await
        .expect("fetched");

    assert_eq!(bytes.as_ref(), photo.as_slice());
    assert_eq!(info.mime_type, "image/jpeg");
    assert_eq!(info.file_size, Some(5000));
    assert_eq!(info.id, "987654321");
    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].path, format!("/{FAKE_VERSION}/987654321"));
    assert_eq!(requests[1].path, "/media-download/987654321");
    let bearer = format!("Bearer {FAKE_TOKEN}");
    assert_eq!(requests[0].header("authorization"), Some(bearer.as_str()));
    assert_eq!(requests[1].header("authorization"), Some(bearer.as_str()));
}

#[tokio::test]
async fn a_file_size_sent_as_a_string_is_understood() {
    let fake = FakeGraph::start().await;
    fake.add_media(
        "111",
        FakeMedia {
            mime_type: "audio/ogg".into(),
            file_size: json!("1234"),
            body: MediaBody::Bytes(vec![7; 1234]),
        },
    );
    let info = client(&fake).media("111").await.expect("metadata");
    assert_eq!(info.file_size, Some(1234));
    assert_eq!(info.mime_type, "audio/ogg");
}

#[tokio::test]
async fn a_declared_size_over_the_limit_is_refused_without_downloading() {
    let fake = FakeGraph::start().await;
    fake.add_media(
        "222",
        FakeMedia {
            mime_type: "video/mp4".into(),
            file_size: json!("20000000"),
            body: MediaBody::Bytes(vec![1; 10]),
        },
    );
    let err = client(&fake)
        .fetch_media("222", 16 * 1024 * 1024)
        .await
        .expect_err("too large");
    assert!(
        matches!(
            err,
            MediaError::DeclaredTooLarge {
                declared: 20000000,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(fake.requests_under("/media-download/").is_empty());
}

#[tokio::test]
async fn a_content_length_over_the_limit_is_refused_before_reading_the_body() {
    let fake = FakeGraph::start().await;
    fake.add_media(
        "333",
        FakeMedia {
            mime_type: "image/png".into(),
            file_size: serde_json::Value::Null,
            body: MediaBody::Bytes(vec![9; 4096]),
        },
    );
    let err = client(&fake)
        .fetch_media("333", 1024)
        .await
        .expect_err("too large");
    assert!(
        matches!(
            err,
            MediaError::DeclaredTooLarge {
                declared: 4096,
                limit: 1024
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_server_that_lies_about_the_size_is_cut_off_once_the_limit_is_passed() {
    let fake = FakeGraph::start().await;
    fake.add_media(
        "444",
        FakeMedia {
            mime_type: "image/jpeg".into(),
            file_size: json!(100),
            body: MediaBody::Endless,
        },
    );
    let limit = 1024 * 1024;
    let err = client(&fake)
        .fetch_media("444", limit)
        .await
        .expect_err("the body never ends");
    assert!(
        matches!(err, MediaError::TooLarge { limit: l } if l == limit),
        "{err:?}"
    );
    // Give the server a moment to notice the hang-up, then check it stopped being read:
    // a client that buffered everything would have pulled the whole gigabyte.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let served = fake.media_bytes_served("444");
    assert!(served < 64 * 1024 * 1024, "server produced {served} bytes");
}

#[tokio::test]
async fn an_unknown_media_id_is_a_metadata_error_with_the_graph_code() {
    let fake = FakeGraph::start().await;
    let err = client(&fake)
        .fetch_media("555", 1024)
        .await
        .expect_err("unknown");
    match err {
        MediaError::Metadata(graph) => assert_eq!(graph.code(), Some(100)),
        other => panic!("expected a metadata error, got {other:?}"),
    }
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn a_media_id_that_would_change_the_url_path_is_refused_without_a_request() {
    let fake = FakeGraph::start().await;
    let err = client(&fake)
        .fetch_media("me/accounts", 1024)
        .await
        .expect_err("refused");
    assert!(matches!(err, MediaError::Metadata(_)), "{err:?}");
    assert!(fake.requests().is_empty());
}
