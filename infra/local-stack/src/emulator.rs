//! The local AWS emulator: `moto` in server mode, from the project's virtualenv.
//!
//! The functions talk to DynamoDB, KMS, SQS, S3 and Secrets Manager through the real
//! `aws-sdk-*` clients; locally those clients point at this emulator (DESIGN.md principle 2).
//! `infra/scripts/venv.sh` installs it into `<repo>/.venv`.

use crate::error::LocalError;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::Credentials;

/// The region everything runs in, locally as in the cloud (POLICY A13).
pub const REGION: &str = "ap-south-1";

/// How long [`Emulator::start`] waits for the emulator to answer.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// A running emulator process, stopped when this value is dropped.
#[derive(Debug)]
pub struct Emulator {
    /// Base URL of the emulator, e.g. `http://127.0.0.1:40123`; give it to [`sdk_config`].
    pub endpoint: String,
    child: Child,
    /// The emulator's output; removed on drop unless starting failed (then it explains why).
    log: PathBuf,
    keep_log: bool,
}

impl Emulator {
    /// Starts `.venv/bin/moto_server` on a free loopback port and waits (blocking, at most
    /// 30 s) until it answers HTTP. Its output goes to `<repo>/.local/emulator-<port>.log`,
    /// kept only when starting fails.
    pub fn start(repo_root: &Path) -> Result<Emulator, LocalError> {
        let program = repo_root.join(".venv/bin/moto_server");
        if !program.is_file() {
            return Err(LocalError::NotInstalled(program));
        }
        let port = free_port().map_err(LocalError::NoFreePort)?;

        let log_dir = repo_root.join(".local");
        let log = log_dir.join(format!("emulator-{port}.log"));
        let log_file = std::fs::create_dir_all(&log_dir)
            .and_then(|()| File::create(&log))
            .map_err(|source| LocalError::Log {
                path: log.clone(),
                source,
            })?;
        let log_file_too = log_file.try_clone().map_err(|source| LocalError::Log {
            path: log.clone(),
            source,
        })?;

        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_file_too)
            .spawn()
            .map_err(|source| LocalError::Spawn {
                program: program.clone(),
                source,
            })?;
        // From here on, dropping `emulator` kills the child on every early return.
        let mut emulator = Emulator {
            endpoint: format!("http://127.0.0.1:{port}"),
            child,
            log: log.clone(),
            keep_log: true,
        };

        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let started = Instant::now();
        loop {
            if answers_http(address) {
                emulator.keep_log = false;
                return Ok(emulator);
            }
            if let Ok(Some(status)) = emulator.child.try_wait() {
                return Err(LocalError::EmulatorExited { status, log });
            }
            if started.elapsed() > START_DEADLINE {
                return Err(LocalError::EmulatorTimeout {
                    endpoint: emulator.endpoint.clone(),
                    waited: START_DEADLINE,
                    log,
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The process id, for a person reading `ps`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        // Already gone is fine: nothing to clean up then.
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !self.keep_log {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// Asks the OS for a free port. Another process could take it before the emulator binds it;
/// the emulator then exits and `start` reports it, which is rare enough for a dev tool.
fn free_port() -> io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// True when something on `address` answers a plain HTTP request with an HTTP status line.
fn answers_http(address: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = b"GET /moto-api/data.json HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if stream.write_all(request).is_err() {
        return false;
    }
    let mut status_line = [0u8; 8];
    stream.read_exact(&mut status_line).is_ok() && status_line.starts_with(b"HTTP/1.")
}

/// SDK configuration for the emulator at `endpoint`: region ap-south-1, obviously fake static
/// credentials (the emulator accepts any), every client's endpoint overridden, and more retries
/// than the SDK's default 3: moto's `TransactWriteItems` deep-copies every table for its
/// rollback and answers 500 when another request writes meanwhile (an emulator race that real
/// DynamoDB does not have), which many tests writing at once make likely.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    let credentials = Credentials::new(
        "AKIDLOCALFAKEKEY0000",
        "local-fake-secret-access-key",
        None,
        None,
        "ecomdrive-local-emulator",
    );
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(credentials)
        .endpoint_url(endpoint)
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(8))
        .load()
        .await
}

/// An S3 client for `sdk`. With an endpoint override (the emulator) S3 needs path-style
/// addressing (`http://host/bucket/key`): the virtual-host style would put the bucket in the
/// host name. Against real AWS the default addressing is kept.
pub fn s3_client(sdk: &SdkConfig) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(sdk.endpoint_url().is_some())
        .build();
    aws_sdk_s3::Client::from_conf(config)
}
