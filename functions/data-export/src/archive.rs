//! The zip the merchant downloads: a file per exported kind, the attachment files, and
//! `manifest.json` (what is in it and what was left out, with why). Written to local disk and
//! uploaded whole; blocking I/O, so the job runs it off the async threads.

use crate::files::{self, Spooled};
use ecomdrive_core::data_rights::ExportFormat;
use ecomdrive_core::ids::{ExportId, MerchantId};
use serde::Serialize;
use std::fs::File;
use std::io::{self, BufWriter};
use std::path::Path;
use time::OffsetDateTime;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

pub const MANIFEST: &str = "manifest.json";

/// `manifest.json`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Manifest {
    pub merchant_id: MerchantId,
    pub export_id: ExportId,
    pub format: ExportFormat,
    /// When the export read the merchant's data.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Every file of records, with the kind of record it holds (none for a derived file such as
    /// `pnl_monthly`) and how many.
    pub files: Vec<ManifestFile>,
    pub attachments: AttachmentCounts,
    /// Kinds of record EcomDrive keeps for the merchant but does not export, and why.
    pub omitted: Vec<OmittedKind>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ManifestFile {
    pub file: String,
    pub kind: Option<&'static str>,
    pub records: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct AttachmentCounts {
    /// Files under `attachments/`.
    pub included: u64,
    /// Stored attachments whose file was no longer in the bucket.
    pub missing: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OmittedKind {
    pub kind: &'static str,
    pub reason: &'static str,
}

/// The zip being written.
pub struct Archive {
    zip: ZipWriter<BufWriter<File>>,
    modified: zip::DateTime,
}

impl Archive {
    pub fn create(path: &Path, created_at: OffsetDateTime) -> io::Result<Self> {
        let modified = zip::DateTime::from_date_and_time(
            u16::try_from(created_at.year()).unwrap_or(1980),
            created_at.month().into(),
            created_at.day(),
            created_at.hour(),
            created_at.minute(),
            created_at.second(),
        )
        .unwrap_or_default();
        Ok(Self {
            zip: ZipWriter::new(BufWriter::new(File::create(path)?)),
            modified,
        })
    }

    fn options(&self, method: CompressionMethod) -> SimpleFileOptions {
        SimpleFileOptions::default()
            .compression_method(method)
            .last_modified_time(self.modified)
            // A file of a large merchant's records may pass 4 GB (zip64).
            .large_file(true)
    }

    /// Adds a spooled file as `<name>.json` or `<name>.csv`; answers the file's name.
    pub fn add_records(
        &mut self,
        format: ExportFormat,
        spooled: &Spooled,
    ) -> zip::result::ZipResult<ManifestFile> {
        let file = format!("{}.{}", spooled.name, files::extension(format));
        self.zip
            .start_file(file.as_str(), self.options(CompressionMethod::Deflated))?;
        files::write_file(format, spooled, &mut self.zip)?;
        Ok(ManifestFile {
            file,
            kind: spooled.kind.map(|k| k.as_str()),
            records: spooled.records,
        })
    }

    /// Adds an attachment file as it is: photos and videos are compressed already.
    pub fn add_file(&mut self, name: &str, from: &Path) -> zip::result::ZipResult<()> {
        self.zip
            .start_file(name, self.options(CompressionMethod::Stored))?;
        io::copy(&mut File::open(from)?, &mut self.zip)?;
        Ok(())
    }

    /// Writes the manifest last (it counts what came before) and closes the zip.
    pub fn finish(mut self, manifest: &Manifest) -> zip::result::ZipResult<()> {
        self.zip
            .start_file(MANIFEST, self.options(CompressionMethod::Deflated))?;
        serde_json::to_writer_pretty(&mut self.zip, manifest).map_err(io::Error::from)?;
        let mut out = self.zip.finish()?;
        io::Write::flush(&mut out)?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::Spool;
    use ecomdrive_aws::store::kinds::RecordKind;
    use serde_json::{Value, json};
    use std::io::Read;

    #[test]
    fn the_zip_holds_each_file_the_attachments_and_a_manifest_of_counts() {
        let dir = std::env::temp_dir().join(format!("archive-test-{}", ExportId::generate()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut spool = Spool::new(&dir);
        let rec = json!({"id": "cus_1", "name": "Ādi"});
        spool
            .append(
                "customers",
                Some(RecordKind::Customer),
                rec.as_object().unwrap(),
            )
            .unwrap();
        let (files, _) = spool.finish().unwrap();
        let photo = dir.join("photo");
        std::fs::write(&photo, b"\x89PNG").unwrap();

        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let zip_path = dir.join("export.zip");
        let mut archive = Archive::create(&zip_path, now).unwrap();
        let entry = archive.add_records(ExportFormat::Csv, &files[0]).unwrap();
        assert_eq!(
            entry,
            ManifestFile {
                file: "customers.csv".into(),
                kind: Some("customer"),
                records: 1
            }
        );
        archive.add_file("attachments/c/m/0", &photo).unwrap();
        let manifest = Manifest {
            merchant_id: MerchantId::generate(),
            export_id: ExportId::generate(),
            format: ExportFormat::Csv,
            created_at: now,
            files: vec![entry],
            attachments: AttachmentCounts {
                included: 1,
                missing: 0,
            },
            omitted: vec![OmittedKind {
                kind: "mid_marker",
                reason: "why",
            }],
        };
        archive.finish(&manifest).unwrap();

        let mut zip = zip::ZipArchive::new(File::open(&zip_path).unwrap()).unwrap();
        let mut read = |name: &str| {
            let mut s = Vec::new();
            zip.by_name(name).unwrap().read_to_end(&mut s).unwrap();
            s
        };
        assert_eq!(
            read("customers.csv"),
            "\u{feff}id,name\r\ncus_1,Ādi\r\n".as_bytes()
        );
        assert_eq!(read("attachments/c/m/0"), b"\x89PNG");
        let m: Value = serde_json::from_slice(&read(MANIFEST)).unwrap();
        assert_eq!(m["format"], "csv");
        assert_eq!(
            m["files"][0],
            json!({"file": "customers.csv", "kind": "customer", "records": 1})
        );
        assert_eq!(m["attachments"]["included"], 1);
        assert_eq!(m["omitted"][0]["kind"], "mid_marker");
        assert_eq!(
            m["created_at"],
            now.format(&time::format_description::well_known::Rfc3339)
                .unwrap()
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
