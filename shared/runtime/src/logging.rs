//! JSON log lines on stdout, one per event, for CloudWatch Logs.
//!
//! Each line has the event's fields at the top level (flattened), the level, the target and the
//! current span: in Lambda that is lambda_runtime's `Lambda runtime invoke` span, which carries the
//! `requestId`. The filter comes from `RUST_LOG`, else Lambda's `AWS_LAMBDA_LOG_LEVEL`, else `info`.
//!
//! Never log a token, a secret, an e-mail address or a message's text (POLICY E14); tests check
//! that with [`capture`].

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Installs the JSON subscriber for the whole process. Call it first in `main`. Calling it again
/// (or after another subscriber was installed) does nothing.
pub fn init_tracing() {
    let filter = EnvFilter::try_from_default_env()
        .ok()
        .or_else(|| {
            let level = std::env::var("AWS_LAMBDA_LOG_LEVEL").ok()?;
            if level.trim().is_empty() {
                return None;
            }
            EnvFilter::try_new(level.trim().to_lowercase()).ok()
        })
        .unwrap_or_else(|| EnvFilter::new("info"));
    let subscriber = json_subscriber(std::io::stdout, cap_chatty_dependencies(filter));
    // An Err only means a subscriber is already installed, which is fine.
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// Crates that log request and response bodies at debug/trace level: whole DynamoDB items, KMS
/// plaintexts (tokens), message text. Raising `RUST_LOG` to debug for our code must not raise
/// them, so they stay at `info` whatever the variable says (POLICY E14).
const CAPPED_AT_INFO: &[&str] = &[
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http_client",
    "aws_sdk_dynamodb",
    "aws_sdk_kms",
    "aws_sdk_sqs",
    "aws_sdk_s3",
    "aws_sdk_secretsmanager",
    "aws_config",
    "hyper",
    "hyper_util",
    "reqwest",
    "h2",
    "rustls",
];

fn cap_chatty_dependencies(mut filter: EnvFilter) -> EnvFilter {
    for target in CAPPED_AT_INFO {
        if let Ok(directive) = format!("{target}=info").parse() {
            filter = filter.add_directive(directive);
        }
    }
    filter
}

/// The one place the line format is decided, shared by production and by [`capture`], so tests
/// look at exactly what CloudWatch gets.
fn json_subscriber<W>(writer: W, filter: EnvFilter) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(true)
        .with_ansi(false)
        .with_env_filter(filter)
        .with_writer(writer)
        .finish()
}

/// Capturing log lines in tests, to assert what is (and is not) logged.
///
/// [`with_captured_logs`] attaches a capturing subscriber to one future: every event emitted while
/// that future is polled is captured, whichever worker thread polls it, so it works under both
/// `#[tokio::test]` (current-thread) and `#[tokio::test(flavor = "multi_thread")]`. Tasks the
/// future starts with `tokio::spawn` are *not* captured unless they are spawned as
/// `tokio::spawn(fut.with_current_subscriber())` (`tracing::instrument::WithSubscriber`).
/// Everything is captured, at every level, whatever `RUST_LOG` says.
#[cfg(test)]
mod filter_tests {
    use super::*;

    #[test]
    fn raising_rust_log_does_not_raise_the_sdks_body_logging() {
        use std::io::Write;
        use std::sync::{Arc, Mutex};

        #[derive(Clone)]
        struct Buffer(Arc<Mutex<Vec<u8>>>);
        impl Write for Buffer {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().expect("lock").extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer(Arc::default());
        let writer = buffer.clone();
        let subscriber = json_subscriber(
            move || writer.clone(),
            cap_chatty_dependencies(EnvFilter::new("trace")),
        );
        tracing::subscriber::with_default(subscriber, || {
            tracing::trace!(target: "aws_smithy_runtime", "sdk body at trace");
            tracing::debug!(target: "aws_sdk_kms", "kms plaintext at debug");
            tracing::info!(target: "aws_smithy_runtime", "sdk line at info");
            tracing::trace!(target: "ecomdrive_runtime", "our line at trace");
        });
        let text = String::from_utf8(buffer.0.lock().expect("lock").clone()).expect("utf-8");
        assert!(!text.contains("sdk body at trace"), "{text}");
        assert!(!text.contains("kms plaintext at debug"), "{text}");
        assert!(text.contains("sdk line at info"), "{text}");
        assert!(text.contains("our line at trace"), "{text}");
    }
}

pub mod capture {
    use std::future::Future;
    use std::io;
    use std::sync::{Arc, Mutex};

    use tracing::instrument::WithSubscriber;
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::fmt::MakeWriter;

    /// The captured output: one JSON object per line.
    #[derive(Clone, Default)]
    pub struct LogBuffer {
        bytes: Arc<Mutex<Vec<u8>>>,
    }

    impl LogBuffer {
        pub fn text(&self) -> String {
            let bytes = self.bytes.lock().unwrap_or_else(|p| p.into_inner());
            String::from_utf8_lossy(&bytes).into_owned()
        }

        pub fn lines(&self) -> Vec<String> {
            self.text().lines().map(str::to_owned).collect()
        }

        /// Each line parsed as JSON (a line that is not JSON fails the test).
        pub fn events(&self) -> Vec<serde_json::Value> {
            self.lines()
                .iter()
                .map(|line| {
                    serde_json::from_str(line)
                        .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"))
                })
                .collect()
        }

        pub fn contains(&self, needle: &str) -> bool {
            self.text().contains(needle)
        }

        /// Fails the test if any line contains `needle`. The panic message does not repeat the
        /// needle (it may be a secret), only the number of the offending line.
        #[track_caller]
        pub fn assert_absent(&self, needle: &str) {
            assert!(!needle.is_empty(), "assert_absent needs a non-empty needle");
            if let Some(index) = self.lines().iter().position(|line| line.contains(needle)) {
                panic!(
                    "a forbidden value appears in captured log line {} of {}",
                    index + 1,
                    self.lines().len()
                );
            }
        }
    }

    impl io::Write for LogBuffer {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let mut bytes = self.bytes.lock().unwrap_or_else(|p| p.into_inner());
            bytes.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for LogBuffer {
        type Writer = LogBuffer;

        fn make_writer(&'w self) -> Self::Writer {
            self.clone()
        }
    }

    /// A subscriber in the production format writing into the returned buffer. Use it with
    /// `tracing::subscriber::with_default` for synchronous code, or prefer [`with_captured_logs`].
    pub fn capture_logs() -> (impl tracing::Subscriber + Send + Sync, LogBuffer) {
        keep_tracing_asking_every_subscriber();
        let buffer = LogBuffer::default();
        let subscriber = super::json_subscriber(buffer.clone(), EnvFilter::new("trace"));
        (subscriber, buffer)
    }

    /// tracing treats a lone scoped subscriber as if it were the only one: a log statement first
    /// reached on a thread without it (another test's task, in parallel) is then cached as
    /// disabled for good, and the capture silently misses it. A second, silent dispatcher that
    /// lives as long as the process makes tracing ask every live subscriber instead.
    fn keep_tracing_asking_every_subscriber() {
        static SILENT: std::sync::OnceLock<tracing::Dispatch> = std::sync::OnceLock::new();
        SILENT.get_or_init(|| tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default()));
    }

    /// Runs `future` with every log event it emits captured; returns its output and the logs.
    pub async fn with_captured_logs<F: Future>(future: F) -> (F::Output, LogBuffer) {
        let (subscriber, buffer) = capture_logs();
        let output = future.with_subscriber(subscriber).await;
        (output, buffer)
    }
}

#[cfg(test)]
mod tests {
    use super::capture::*;

    #[tokio::test]
    async fn captured_lines_are_flat_json_with_the_current_span() {
        let (_, logs) = with_captured_logs(async {
            let span = tracing::info_span!("Lambda runtime invoke", requestId = "req-123");
            let _entered = span.enter();
            tracing::warn!(message_id = "m-1", "record failed");
        })
        .await;
        let events = logs.events();
        assert_eq!(events.len(), 1, "{:?}", logs.lines());
        let event = &events[0];
        assert_eq!(event["message"], "record failed");
        assert_eq!(event["message_id"], "m-1", "fields are flattened");
        assert_eq!(event["level"], "WARN");
        assert_eq!(event["span"]["requestId"], "req-123");
        assert!(!logs.text().contains("\u{1b}["), "no ANSI colours");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn capture_works_on_a_multi_threaded_runtime() {
        use tracing::instrument::WithSubscriber;
        // Spawned, so the captured future runs on the worker threads and may move between them.
        let captured = tokio::spawn(with_captured_logs(async {
            tracing::debug!("before");
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
            // A task spawned inside is captured when it carries the current subscriber along.
            tokio::spawn(
                async { tracing::info!("inside a spawned task") }.with_current_subscriber(),
            )
            .await
            .expect("join");
            tracing::info!("after");
        }));
        let (_, logs) = captured.await.expect("join");
        let messages: Vec<_> = logs
            .events()
            .into_iter()
            .map(|e| e["message"].clone())
            .collect();
        assert_eq!(messages, ["before", "inside a spawned task", "after"]);
    }

    fn log_from_two_places() {
        tracing::info!("reached from two places");
    }

    #[tokio::test]
    async fn a_line_first_logged_on_a_thread_without_the_capture_is_still_captured() {
        let (_, logs) = with_captured_logs(async {
            // Another thread, outside the capture, reaches the statement first.
            std::thread::spawn(log_from_two_places)
                .join()
                .expect("join");
            log_from_two_places();
        })
        .await;
        assert_eq!(logs.events().len(), 1, "{:?}", logs.lines());
    }

    #[tokio::test]
    async fn captures_are_separate_per_future() {
        let (_, first) = with_captured_logs(async { tracing::info!("one") }).await;
        let (_, second) = with_captured_logs(async { tracing::info!("two") }).await;
        assert!(first.contains("one") && !first.contains("two"));
        assert!(second.contains("two") && !second.contains("one"));
    }

    #[tokio::test]
    async fn assert_absent_fails_when_the_value_is_logged() {
        let (_, logs) =
            with_captured_logs(async { tracing::info!(token = "EAAB-leak", "oops") }).await;
        let outcome = std::panic::catch_unwind(|| logs.assert_absent("EAAB-leak"));
        assert!(outcome.is_err());
        logs.assert_absent("something-else");
    }
}
