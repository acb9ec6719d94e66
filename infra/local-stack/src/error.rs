//! The one error type of the local stack: starting the emulator, provisioning from
//! template.yaml, composing the stack.

use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    // ---- the emulator
    #[error("the AWS emulator is not installed ({0} is missing): run infra/scripts/venv.sh first")]
    NotInstalled(PathBuf),
    #[error("could not find a free port on 127.0.0.1: {0}")]
    NoFreePort(#[source] io::Error),
    #[error("could not write the emulator's log file {path}: {source}")]
    Log { path: PathBuf, source: io::Error },
    #[error("could not start {program}: {source}")]
    Spawn { program: PathBuf, source: io::Error },
    #[error("the AWS emulator exited ({status}) before answering; see {log}")]
    EmulatorExited { status: ExitStatus, log: PathBuf },
    #[error("the AWS emulator did not answer on {endpoint} within {waited:?}; see {log}")]
    EmulatorTimeout {
        endpoint: String,
        waited: Duration,
        log: PathBuf,
    },
    // ---- provisioning from template.yaml
    #[error(
        "invalid name prefix {0:?}: use 1 to 30 characters a-z, 0-9 or '-', starting with a letter"
    )]
    InvalidPrefix(String),
    #[error("could not read {path}: {source}")]
    ReadTemplate {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("template.yaml is not valid YAML: {0}")]
    ParseTemplate(#[from] serde_yaml::Error),
    #[error("template.yaml, {at}: {problem}")]
    Template { at: String, problem: String },
    #[error("template.yaml, resource {resource}: cannot resolve a reference to {target} locally")]
    UnresolvedReference { resource: String, target: String },
    #[error(
        "template.yaml, resource {resource}: intrinsic function {function} is not supported locally"
    )]
    UnsupportedIntrinsic { resource: String, function: String },
    #[error(
        "template.yaml, resource {0}: conditional resources are not supported by the local provisioning"
    )]
    ConditionalResource(String),
    #[error("template.yaml: these resources depend on each other in a cycle: {0:?}")]
    DependencyCycle(Vec<String>),
    #[error("no value supplied for secret {0}: pass it in the `secrets` map (logical id → JSON)")]
    MissingSecretValue(String),
    #[error("template.yaml declares no resource {0}, which the code needs")]
    MissingResource(&'static str),
    #[error("creating {resource} ({operation}) failed: {message}")]
    Aws {
        resource: String,
        operation: &'static str,
        message: String,
    },
    #[error("a provisioning task failed: {0}")]
    Task(String),
    // ---- the stack
    #[error("could not bind the local port: {0}")]
    Bind(std::io::Error),
    #[error("Meta sandbox: {0}")]
    Sandbox(String),
    #[error("outbound HTTP: {0}")]
    Http(String),
}
