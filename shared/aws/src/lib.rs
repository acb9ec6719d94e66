//! Adapters to AWS, through the official SDK clients (locally pointed at the emulator by
//! `AWS_ENDPOINT_URL`): the DynamoDB store, the KMS token vault, SQS queues, S3 objects.

pub mod blobs;
pub mod error;
pub mod mail;
pub mod queue;
pub mod settlement_import;
pub mod store;
pub mod vault;

pub use blobs::Blobs;
pub use error::AwsError;
pub use mail::Mailer;
pub use queue::Queue;
pub use store::Store;
pub use vault::{TokenContext, TokenVault};

/// An S3 client that works against the emulator too (path-style addressing with an endpoint).
pub fn s3_client(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}
