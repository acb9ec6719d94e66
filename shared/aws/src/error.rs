//! The one error type of the AWS adapters.

/// What went wrong talking to AWS, in the terms the callers act on.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    #[error("not found")]
    NotFound,
    /// A condition the write depended on did not hold (already exists, changed meanwhile).
    #[error("conflict: {0}")]
    Conflict(&'static str),
    #[error("invalid cursor")]
    BadCursor,
    #[error("stored record could not be read: {0}")]
    Corrupt(String),
    #[error("DynamoDB: {0}")]
    Dynamo(String),
    /// KMS refused to decrypt: another merchant's (or resource's) ciphertext, a wrong key, or
    /// tampered data. Deliberately says nothing more.
    #[error("the token could not be decrypted for this merchant")]
    TokenRefused,
    #[error("KMS: {0}")]
    Kms(String),
    #[error("SQS: {0}")]
    Queue(String),
    #[error("S3: {0}")]
    Blob(String),
    #[error("SES: {0}")]
    Mail(String),
}

impl AwsError {
    pub(crate) fn dynamo<E: std::error::Error + 'static>(
        e: aws_sdk_dynamodb::error::SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
    ) -> Self {
        // The display of an SdkError hides the service message: keep the whole chain.
        AwsError::Dynamo(aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())
    }
}
