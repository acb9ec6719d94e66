//! The allow-listed HTTP client against real sockets on loopback: bounded reads, redirects and
//! error texts.

use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use ecomdrive_platforms::{
    AllowList, LoopbackPorts, OutboundHttp, PlatformError, Refusal, Timeouts,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

async fn serve(router: Router) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    port
}

fn client_for(port: u16) -> OutboundHttp {
    OutboundHttp::new(
        AllowList::production().with_loopback(LoopbackPorts::Only(vec![port])),
        Timeouts {
            connect: Duration::from_secs(1),
            total: Duration::from_secs(5),
        },
    )
    .unwrap()
}

fn attachment_server() -> Router {
    Router::new()
        .route(
            "/image.jpg",
            get(|headers: HeaderMap| async move {
                // Echo the user agent so the test can see what we send.
                let agent = headers
                    .get(header::USER_AGENT)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                (
                    [(header::CONTENT_TYPE, "image/jpeg")],
                    format!("jpeg-bytes|{agent}"),
                )
            }),
        )
        .route("/big.bin", get(|| async { vec![7u8; 64 * 1024] }))
        .route("/gone", get(|| async { StatusCode::NOT_FOUND }))
        .route(
            "/to-elsewhere",
            get(|| async {
                (
                    StatusCode::FOUND,
                    [(
                        header::LOCATION,
                        "https://example.com/steal?access_token=EAAB-secret",
                    )],
                )
                    .into_response()
            }),
        )
        .route(
            "/to-image",
            get(|| async {
                (StatusCode::FOUND, [(header::LOCATION, "/image.jpg")]).into_response()
            }),
        )
}

#[tokio::test]
async fn fetch_bounded_returns_the_body_and_its_content_type() {
    let port = serve(attachment_server()).await;
    let http = client_for(port);
    let (body, content_type) = http
        .fetch_bounded(&format!("http://127.0.0.1:{port}/image.jpg"), 1024)
        .await
        .unwrap();
    assert_eq!(&body[..], b"jpeg-bytes|EcomDrive/0.1");
    assert_eq!(content_type.as_deref(), Some("image/jpeg"));
}

#[tokio::test]
async fn fetch_bounded_refuses_an_announced_body_over_the_limit() {
    let port = serve(attachment_server()).await;
    let error = client_for(port)
        .fetch_bounded(&format!("http://127.0.0.1:{port}/big.bin"), 1024)
        .await
        .unwrap_err();
    assert!(
        matches!(error, PlatformError::TooLarge { limit: 1024 }),
        "{error:?}"
    );
}

#[tokio::test]
async fn fetch_bounded_stops_an_endless_unannounced_body_at_the_limit() {
    // A raw server that streams chunks forever without Content-Length: only a reader that stops
    // at the limit can finish (a reader that waits for the end would hit the 5 s timeout instead).
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = [0u8; 4096];
        let _ = socket.read(&mut request).await;
        let head = b"HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ntransfer-encoding: chunked\r\n\r\n";
        if socket.write_all(head).await.is_err() {
            return;
        }
        let chunk = [b'x'; 1024];
        loop {
            let framed = [b"400\r\n".as_slice(), &chunk, b"\r\n"].concat();
            if socket.write_all(&framed).await.is_err() {
                return;
            }
        }
    });
    let started = std::time::Instant::now();
    let error = client_for(port)
        .fetch_bounded(&format!("http://127.0.0.1:{port}/endless"), 10_000)
        .await
        .unwrap_err();
    assert!(
        matches!(error, PlatformError::TooLarge { limit: 10_000 }),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn fetch_bounded_reports_an_error_status() {
    let port = serve(attachment_server()).await;
    let error = client_for(port)
        .fetch_bounded(&format!("http://127.0.0.1:{port}/gone"), 1024)
        .await
        .unwrap_err();
    assert!(
        matches!(error, PlatformError::UnexpectedStatus(404)),
        "{error:?}"
    );
}

#[tokio::test]
async fn policy_e11_a_redirect_off_the_allow_list_is_not_followed() {
    let port = serve(attachment_server()).await;
    let error = client_for(port)
        .fetch_bounded(&format!("http://127.0.0.1:{port}/to-elsewhere"), 1024)
        .await
        .unwrap_err();
    match &error {
        PlatformError::Refused(Refusal::HostNotAllowed { host }) => assert_eq!(host, "example.com"),
        other => panic!("expected a refused redirect, got {other:?}"),
    }
    assert!(!format!("{error} {error:?}").contains("EAAB"));
}

#[tokio::test]
async fn a_redirect_to_an_allowed_host_is_followed() {
    let port = serve(attachment_server()).await;
    let (body, _) = client_for(port)
        .fetch_bounded(&format!("http://127.0.0.1:{port}/to-image"), 1024)
        .await
        .unwrap();
    assert!(body.starts_with(b"jpeg-bytes"));
}

#[tokio::test]
async fn a_connection_failure_never_repeats_the_url_and_its_token() {
    // Bind then drop: the port is (very likely) closed, so the connection is refused.
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().port()
    };
    let error = client_for(port)
        .fetch_bounded(
            &format!("http://127.0.0.1:{port}/x?access_token=EAAB-secret-token"),
            1024,
        )
        .await
        .unwrap_err();
    assert!(matches!(error, PlatformError::Connect(_)), "{error:?}");
    let text = format!("{error} {error:?}");
    assert!(!text.contains("EAAB"), "{text}");
    assert!(!text.contains("access_token"), "{text}");
}
