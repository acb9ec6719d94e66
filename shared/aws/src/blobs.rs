//! Objects in the private data bucket. A merchant's own objects (attachments, settlement files)
//! are under `merchants/<merchant_id>/`, so they can be listed and deleted together; exports are
//! under `exports/<merchant_id>/` instead, so one bucket lifecycle rule on the prefix `exports/`
//! expires every export file after days.

use crate::AwsError;
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use ecomdrive_core::ids::{ExportId, MerchantId};

#[derive(Clone)]
pub struct Blobs {
    s3: Client,
    bucket: String,
}

pub fn merchant_key(m: &MerchantId, rest: &str) -> String {
    format!("merchants/{m}/{rest}")
}

/// Where every export file lives: the bucket's lifecycle rule expires objects under it.
pub const EXPORTS_PREFIX: &str = "exports/";

/// The prefix of a merchant's export files (a merchant's deletion removes them too).
pub fn exports_prefix(m: &MerchantId) -> String {
    format!("{EXPORTS_PREFIX}{m}/")
}

/// The zip of one export.
pub fn export_key(m: &MerchantId, export: &ExportId) -> String {
    format!("{}{export}.zip", exports_prefix(m))
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

    /// Uploads a file from disk, streamed (settlement archives can be large).
    pub async fn put_file(
        &self,
        key: &str,
        path: &std::path::Path,
        content_type: Option<&str>,
    ) -> Result<(), AwsError> {
        let body = ByteStream::from_path(path)
            .await
            .map_err(|e| AwsError::Blob(e.to_string()))?;
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(body)
            .set_content_type(content_type.map(str::to_owned))
            .send()
            .await
            .map_err(|e| AwsError::Blob(aws_sdk_s3::error::DisplayErrorContext(e).to_string()))?;
        Ok(())
    }

    /// Streams an object to a file on disk; `Ok(None)` when there is no such object, else its size.
    pub async fn download_to(
        &self,
        key: &str,
        path: &std::path::Path,
    ) -> Result<Option<u64>, AwsError> {
        use tokio::io::AsyncWriteExt;
        let out = match self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                return Ok(None);
            }
            Err(e) => {
                return Err(AwsError::Blob(
                    aws_sdk_s3::error::DisplayErrorContext(e).to_string(),
                ));
            }
        };
        let mut file = tokio::fs::File::create(path)
            .await
            .map_err(|e| AwsError::Blob(e.to_string()))?;
        let mut body = out.body;
        let mut size = 0u64;
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|e| AwsError::Blob(e.to_string()))?
        {
            size += chunk.len() as u64;
            file.write_all(&chunk)
                .await
                .map_err(|e| AwsError::Blob(e.to_string()))?;
        }
        file.flush()
            .await
            .map_err(|e| AwsError::Blob(e.to_string()))?;
        Ok(Some(size))
    }

    pub async fn delete(&self, key: &str) -> Result<(), AwsError> {
        self.s3
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| AwsError::Blob(aws_sdk_s3::error::DisplayErrorContext(e).to_string()))?;
        Ok(())
    }

    /// A URL the merchant's browser can GET one object from, until it expires (a download).
    pub async fn presigned_get(
        &self,
        key: &str,
        expires_in: std::time::Duration,
    ) -> Result<String, AwsError> {
        let config = aws_sdk_s3::presigning::PresigningConfig::expires_in(expires_in)
            .map_err(|e| AwsError::Blob(e.to_string()))?;
        let request = self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(|e| AwsError::Blob(aws_sdk_s3::error::DisplayErrorContext(e).to_string()))?;
        Ok(request.uri().to_owned())
    }

    /// A URL the merchant's browser can PUT one object to, until it expires.
    pub async fn presigned_put(
        &self,
        key: &str,
        content_type: &str,
        expires_in: std::time::Duration,
    ) -> Result<String, AwsError> {
        let config = aws_sdk_s3::presigning::PresigningConfig::expires_in(expires_in)
            .map_err(|e| AwsError::Blob(e.to_string()))?;
        let request = self
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .presigned(config)
            .await
            .map_err(|e| AwsError::Blob(aws_sdk_s3::error::DisplayErrorContext(e).to_string()))?;
        Ok(request.uri().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_files_live_under_the_expiring_prefix_apart_from_the_merchants_objects() {
        let m = MerchantId::parse("mer_01jd0000000000000000000000").unwrap();
        let e = ExportId::parse("exp_01jd0000000000000000000001").unwrap();
        let key = export_key(&m, &e);
        assert_eq!(key, format!("exports/{m}/{e}.zip"));
        assert!(key.starts_with(EXPORTS_PREFIX) && key.starts_with(&exports_prefix(&m)));
        assert!(!key.starts_with(&merchant_key(&m, "")));
    }
}
