//! The export's files: records are spooled to disk as they are read (one JSON line each, per
//! file), then each file is written into the zip as a JSON array or as CSV. Memory holds one
//! record and the column names of each file, never the records.

use ecomdrive_aws::store::kinds::RecordKind;
use ecomdrive_core::data_rights::ExportFormat;
use ecomdrive_core::spreadsheet::{self, text_cell};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::kinds::AttachmentFile;

/// One file of the export being spooled.
struct SpoolFile {
    kind: Option<RecordKind>,
    path: PathBuf,
    out: BufWriter<File>,
    records: u64,
    columns: BTreeSet<String>,
}

/// The records read so far, one temporary file per export file, in `dir`.
pub struct Spool {
    dir: PathBuf,
    files: BTreeMap<&'static str, SpoolFile>,
    attachments: Option<BufWriter<File>>,
}

/// A spooled file, ready to be written into the zip.
#[derive(Debug)]
pub struct Spooled {
    /// The file's name without extension, e.g. `messages`.
    pub name: &'static str,
    /// The record kind it holds; `None` for a derived file (the monthly P&L).
    pub kind: Option<RecordKind>,
    pub path: PathBuf,
    pub records: u64,
    /// Every field any record has, `id` first, then by name: the CSV header.
    pub columns: Vec<String>,
}

impl Spool {
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
            files: BTreeMap::new(),
            attachments: None,
        }
    }

    pub fn append(
        &mut self,
        name: &'static str,
        kind: Option<RecordKind>,
        record: &Map<String, Value>,
    ) -> io::Result<()> {
        let file = match self.files.entry(name) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => {
                let path = self.dir.join(format!("{name}.jsonl"));
                e.insert(SpoolFile {
                    kind,
                    out: BufWriter::new(File::create(&path)?),
                    path,
                    records: 0,
                    columns: BTreeSet::new(),
                })
            }
        };
        for k in record.keys() {
            if !file.columns.contains(k) {
                file.columns.insert(k.clone());
            }
        }
        serde_json::to_writer(&mut file.out, record)?;
        file.out.write_all(b"\n")?;
        file.records += 1;
        Ok(())
    }

    /// Notes an attachment file to copy into the zip once the records are written.
    pub fn attachment(&mut self, a: &AttachmentFile) -> io::Result<()> {
        let out = match &mut self.attachments {
            Some(out) => out,
            None => self.attachments.insert(BufWriter::new(File::create(
                self.dir.join("attachments.jsonl"),
            )?)),
        };
        serde_json::to_writer(&mut *out, a)?;
        out.write_all(b"\n")
    }

    /// Flushes everything: the files in name order, and the list of attachments (if any).
    pub fn finish(self) -> io::Result<(Vec<Spooled>, Option<PathBuf>)> {
        let mut done = Vec::with_capacity(self.files.len());
        for (name, f) in self.files {
            f.out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
            done.push(Spooled {
                name,
                kind: f.kind,
                path: f.path,
                records: f.records,
                columns: column_order(f.columns),
            });
        }
        let attachments = match self.attachments {
            Some(out) => {
                out.into_inner().map_err(|e| e.into_error())?;
                Some(self.dir.join("attachments.jsonl"))
            }
            None => None,
        };
        Ok((done, attachments))
    }
}

/// `id` first (what a merchant looks for), then the others by name.
fn column_order(columns: BTreeSet<String>) -> Vec<String> {
    let (first, rest): (Vec<String>, Vec<String>) = columns.into_iter().partition(|c| c == "id");
    first.into_iter().chain(rest).collect()
}

pub fn extension(format: ExportFormat) -> &'static str {
    match format {
        ExportFormat::Json => "json",
        ExportFormat::Csv => "csv",
    }
}

/// Writes a spooled file (JSON lines) in `format`: a JSON array, or CSV.
pub fn write_file(format: ExportFormat, spooled: &Spooled, out: &mut impl Write) -> io::Result<()> {
    let lines = BufReader::new(File::open(&spooled.path)?);
    match format {
        ExportFormat::Json => write_json_array(lines, out),
        ExportFormat::Csv => write_csv(lines, &spooled.columns, out),
    }
}

/// JSON lines as one JSON array, a record per line.
pub fn write_json_array(lines: impl BufRead, out: &mut impl Write) -> io::Result<()> {
    out.write_all(b"[")?;
    let mut first = true;
    for line in lines.lines() {
        let line = line?;
        if line.is_empty() {
            continue;
        }
        out.write_all(if first { b"\n" } else { b",\n" })?;
        out.write_all(line.as_bytes())?;
        first = false;
    }
    out.write_all(if first { b"]\n" } else { b"\n]\n" })
}

/// JSON lines as CSV for a spreadsheet (see [`spreadsheet`]): the header row, then a row per
/// record with its value of each column (empty when it has none).
pub fn write_csv(lines: impl BufRead, columns: &[String], out: &mut impl Write) -> io::Result<()> {
    let mut w = spreadsheet::writer(out)?;
    w.write_record(columns.iter().map(|c| text_cell(c)))?;
    for line in lines.lines() {
        let line = line?;
        if line.is_empty() {
            continue;
        }
        let record: Map<String, Value> = serde_json::from_str(&line)?;
        w.write_record(columns.iter().map(|c| cell(record.get(c))))?;
    }
    w.flush()
}

/// One value as a spreadsheet cell: numbers and amounts as they are, text formula-safe, nested
/// values (lists, objects) as their JSON text.
pub fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        // Amounts are stored as text ("-120.00"): a plain number cannot be a formula.
        Some(Value::String(s)) if is_plain_number(s) => s.clone(),
        Some(Value::String(s)) => text_cell(s),
        Some(v) => text_cell(&v.to_string()),
    }
}

/// `-120.00`, `42`: digits with an optional sign and decimal part, nothing else.
fn is_plain_number(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (digits, None),
    };
    let all_digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    all_digits(int) && frac.is_none_or(all_digits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lines(records: &[Value]) -> io::Cursor<Vec<u8>> {
        let mut buf = Vec::new();
        for r in records {
            serde_json::to_writer(&mut buf, r).unwrap();
            buf.push(b'\n');
        }
        io::Cursor::new(buf)
    }

    #[test]
    fn json_lines_become_one_json_array() {
        let mut out = Vec::new();
        write_json_array(lines(&[json!({"a": 1}), json!({"b": "x"})]), &mut out).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v, json!([{"a": 1}, {"b": "x"}]));
        let mut empty = Vec::new();
        write_json_array(lines(&[]), &mut empty).unwrap();
        assert_eq!(serde_json::from_slice::<Value>(&empty).unwrap(), json!([]));
    }

    #[test]
    fn csv_has_bom_header_rfc_4180_quoting_and_formula_safe_cells() {
        let columns = vec![
            "id".to_owned(),
            "name".to_owned(),
            "tags".to_owned(),
            "total".to_owned(),
        ];
        let mut out = Vec::new();
        write_csv(
            lines(&[
                json!({"id": "cus_1", "name": "Priyā, \"Mumbai\"\nShop", "tags": ["a", "b"], "total": "-120.50"}),
                json!({"id": "cus_2", "name": "=HYPERLINK(\"http://x\")"}),
            ]),
            &columns,
            &mut out,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "\u{feff}id,name,tags,total\r\n\
             cus_1,\"Priyā, \"\"Mumbai\"\"\nShop\",\"[\"\"a\"\",\"\"b\"\"]\",-120.50\r\n\
             cus_2,\"'=HYPERLINK(\"\"http://x\"\")\",,\r\n"
        );
    }

    #[test]
    fn cells_keep_numbers_and_neutralise_formulas() {
        assert_eq!(cell(None), "");
        assert_eq!(cell(Some(&json!(null))), "");
        assert_eq!(cell(Some(&json!(true))), "true");
        assert_eq!(cell(Some(&json!(3))), "3");
        assert_eq!(cell(Some(&json!("-3.25"))), "-3.25");
        assert_eq!(cell(Some(&json!("-3+4"))), "'-3+4");
        assert_eq!(cell(Some(&json!("+91 98765 43210"))), "'+91 98765 43210");
        assert_eq!(cell(Some(&json!("@cmd"))), "'@cmd");
        assert_eq!(cell(Some(&json!({"k": 1}))), "{\"k\":1}");
        for not_number in ["", "-", "1.", ".5", "1.2.3", "1e5"] {
            assert!(!is_plain_number(not_number), "{not_number}");
        }
    }

    #[test]
    fn a_spool_keeps_records_on_disk_and_the_columns_of_each_file() {
        let dir = std::env::temp_dir().join(format!(
            "spool-test-{}",
            ecomdrive_core::ids::ExportId::generate()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut spool = Spool::new(&dir);
        let obj = |v: Value| v.as_object().cloned().unwrap();
        spool
            .append(
                "customers",
                Some(RecordKind::Customer),
                &obj(json!({"name": "A", "id": "c1"})),
            )
            .unwrap();
        spool
            .append(
                "customers",
                Some(RecordKind::Customer),
                &obj(json!({"email": "a@x", "id": "c2"})),
            )
            .unwrap();
        spool
            .append("pnl_monthly", None, &obj(json!({"month": "2026-01"})))
            .unwrap();
        let (files, attachments) = spool.finish().unwrap();
        assert!(attachments.is_none());
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].name, "customers");
        assert_eq!(files[0].records, 2);
        assert_eq!(files[0].columns, ["id", "email", "name"]);
        let mut out = Vec::new();
        write_file(ExportFormat::Json, &files[0], &mut out).unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&out).unwrap(),
            json!([{"id": "c1", "name": "A"}, {"email": "a@x", "id": "c2"}])
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
