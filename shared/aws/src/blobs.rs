//! Objects in the private data bucket (attachments now, exports later). Every key starts with
//! `merchants/<merchant_id>/`, so a merchant's objects can be listed and deleted together.

use crate::AwsError;
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use ecomdrive_core::ids::MerchantId;

#[derive(Clone)]
pub struct Blobs {
    s3: Client,
    bucket: String,
}

pub fn merchant_key(m: &MerchantId, rest: &str) -> String {
    format!("merchants/{m}/{rest}")
}

impl Blobs {
    pub fn new(s3: Client, bucket: impl Into<String>) -> Self {
        Self {
            s3,
            bucket: bucket.into(),
        }
    }

    pub async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: Option<&str>,
    ) -> Result<(), AwsError> {
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(bytes))
            .set_content_type(content_type.map(str::to_owned))
            .send()
            .await
            .map_err(|e| AwsError::Blob(aws_sdk_s3::error::DisplayErrorContext(e).to_string()))?;
        Ok(())
    }

    pub async fn get(&self, key: &str) -> Result<Vec<u8>, AwsError> {
        let out = self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| AwsError::Blob(aws_sdk_s3::error::DisplayErrorContext(e).to_string()))?;
        let data = out
            .body
            .collect()
            .await
            .map_err(|e| AwsError::Blob(e.to_string()))?;
        Ok(data.into_bytes().to_vec())
    }
}
