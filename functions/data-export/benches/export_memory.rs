//! Does an export's memory stay flat however much data the merchant has (issue 5)? The whole
//! job (`Exporter::run`: read the partition a page at a time, spool, zip, upload) against the
//! emulator, for merchants of different sizes, each run in a process of its own so one run's
//! heap never flatters or burdens the next.
//!
//! Two modes, both against the emulator named by `AWS_ENDPOINT_URL`:
//! - `export_memory seed N...` provisions template.yaml's resources under a fresh prefix, gives
//!   the merchant `mer_bench-N-items` N message items (about 300 bytes of text each, written
//!   with parallel `BatchWriteItem`s), and prints `TABLE_NAME=...` and `DATA_BUCKET=...` lines;
//! - `export_memory run N json|csv` (with those two variables set) exports that merchant and
//!   prints one line: items, seconds, items/s, zip size, and the process's RSS before the export
//!   and at its peak during it (`VmRSS`, `VmHWM` of /proc/self/status; the peak is reset just
//!   before the export through /proc/self/clear_refs).
//!
//! Run through `infra/bench/export.sh`, which starts the emulator and calls both modes. The
//! emulator (moto) is the bottleneck of the figures of speed; the figures of memory are ours.

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use data_export::Exporter;
use ecomdrive_aws::store::exports::{ExportRecord, ExportStatus};
use ecomdrive_aws::store::keys;
use ecomdrive_aws::{Blobs, Store};
use ecomdrive_core::data_rights::{ExportFormat, ExportJob};
use ecomdrive_core::ids::{ConversationId, MerchantId, MessageId, UserId};
use ecomdrive_local::provision;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tokio::task::JoinSet;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Messages per conversation in the generated data.
const PER_CONVERSATION: usize = 50;
/// Items in one `BatchWriteItem` (DynamoDB's limit).
const BATCH: usize = 25;
/// `BatchWriteItem` calls in flight while seeding.
const IN_FLIGHT: usize = 8;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes `--bench`; it means nothing here.
    let args: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| *a != "--bench")
        .collect();
    match args.as_slice() {
        ["seed", sizes @ ..] if !sizes.is_empty() => {
            let sizes = sizes
                .iter()
                .map(|s| s.parse::<usize>())
                .collect::<Result<Vec<_>, _>>()?;
            seed(&sizes).await
        }
        ["run", size, format] => {
            let format = match *format {
                "json" => ExportFormat::Json,
                "csv" => ExportFormat::Csv,
                other => return Err(format!("format {other:?}: json or csv").into()),
            };
            run(size.parse()?, format).await
        }
        _ => Err(
            "usage: export_memory seed N... | export_memory run N json|csv \
                  (see infra/bench/export.sh)"
                .into(),
        ),
    }
}

fn merchant(items: usize) -> Result<MerchantId, BoxError> {
    MerchantId::parse(&format!("mer_bench-{items}-items")).ok_or_else(|| "merchant id".into())
}

async fn sdk() -> Result<aws_config::SdkConfig, BoxError> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    if endpoint.is_empty() {
        return Err("AWS_ENDPOINT_URL is not set: run infra/bench/export.sh".into());
    }
    Ok(ecomdrive_local::emulator::sdk_config(&endpoint).await)
}

// ---- seed -----------------------------------------------------------------------------------

async fn seed(sizes: &[usize]) -> Result<(), BoxError> {
    let sdk = sdk().await?;
    // The emulator is new for each run of the script: the process id is unique enough.
    let prefix = format!("bench{}", std::process::id());
    let secrets = BTreeMap::from([
        (
            "MetaAppSecret".to_string(),
            serde_json::json!({
                "app_id": "local-app-id",
                "app_secret": "local-fake-app-secret",
                "verify_token": "local-fake-verify-token",
                "state_signing_key": "local-fake-state-key",
            }),
        ),
        (
            "AmazonAppSecret".to_string(),
            serde_json::json!({
                "application_id": "amzn1.sp.solution.bench-fake",
                "client_id": "amzn1.application-oa2-client.benchfake",
                "client_secret": "bench-fake-lwa-secret",
            }),
        ),
        (
            "DeletionFormSecret".to_string(),
            serde_json::json!({ "form_signing_key": "bench-fake-form-signing-key" }),
        ),
    ]);
    let template = provision::template_path(&provision::repo_root());
    let resources = provision::provision(&sdk, &template, &prefix, &secrets).await?;
    let store = Store::new(aws_sdk_dynamodb::Client::new(&sdk), &resources.table);
    for &items in sizes {
        let started = Instant::now();
        write_messages(&store, &merchant(items)?, items).await?;
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "seeded {items} items in {secs:.1} s ({:.0} items/s)",
            items as f64 / secs
        );
    }
    println!("TABLE_NAME={}", resources.table);
    println!("DATA_BUCKET={}", resources.bucket);
    Ok(())
}

/// Writes `n` message items into the merchant's partition, `IN_FLIGHT` batches at a time.
async fn write_messages(store: &Store, m: &MerchantId, n: usize) -> Result<(), BoxError> {
    let start_ms = OffsetDateTime::now_utc().unix_timestamp() as u64 * 1000 - n as u64 * 1000;
    let mut conversation = ConversationId::generate();
    let mut batches = JoinSet::new();
    let mut batch = Vec::with_capacity(BATCH);
    for i in 0..n {
        if i % PER_CONVERSATION == 0 {
            conversation = ConversationId::generate();
        }
        batch.push(message_item(
            m,
            &conversation,
            i,
            start_ms + i as u64 * 1000,
        ));
        if batch.len() == BATCH || i + 1 == n {
            if batches.len() == IN_FLIGHT {
                batches.join_next().await.ok_or("no batch")???;
            }
            let (client, table) = (store.client().clone(), store.table().to_owned());
            let items = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
            batches.spawn(async move { write_batch(&client, &table, items).await });
        }
    }
    while let Some(done) = batches.join_next().await {
        done??;
    }
    Ok(())
}

/// One `BatchWriteItem`, sending unprocessed items again until none is left.
async fn write_batch(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    items: Vec<HashMap<String, AttributeValue>>,
) -> Result<(), BoxError> {
    let mut requests = items
        .into_iter()
        .map(|item| {
            PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map(|put| WriteRequest::builder().put_request(put).build())
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut wait = Duration::from_millis(50);
    while !requests.is_empty() {
        let out = client
            .batch_write_item()
            .request_items(table, requests)
            .send()
            .await
            .map_err(|e| aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())?;
        requests = out
            .unprocessed_items
            .and_then(|mut u| u.remove(table))
            .unwrap_or_default();
        if !requests.is_empty() {
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(2));
        }
    }
    Ok(())
}

/// A stored inbound message as the inbox writes one (same key layout, `kind`, fields), with
/// about 300 bytes of text.
fn message_item(
    m: &MerchantId,
    c: &ConversationId,
    i: usize,
    at_ms: u64,
) -> HashMap<String, AttributeValue> {
    let id = MessageId::generate_at(at_ms);
    let created_at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let s = |v: String| AttributeValue::S(v);
    HashMap::from([
        (keys::PK.into(), s(keys::merchant_pk(m))),
        (keys::SK.into(), s(keys::message_sk(c, &id))),
        (keys::KIND.into(), s("message".into())),
        ("id".into(), s(id.to_string())),
        ("merchant_id".into(), s(m.to_string())),
        ("conversation_id".into(), s(c.to_string())),
        ("direction".into(), s("inbound".into())),
        ("text".into(), s(text(i))),
        ("attachments".into(), AttributeValue::L(Vec::new())),
        ("status".into(), s("received".into())),
        ("mid".into(), s(format!("m_bench{i:010}"))),
        ("author".into(), AttributeValue::Null(true)),
        ("postback_payload".into(), AttributeValue::Null(true)),
        ("reaction".into(), AttributeValue::Null(true)),
        ("created_at".into(), s(created_at)),
        ("error".into(), AttributeValue::Null(true)),
        ("attempts".into(), AttributeValue::N("0".into())),
        ("attempt_started_at".into(), AttributeValue::Null(true)),
    ])
}

/// About 300 bytes of a customer's words, different for each message (so the zip compresses
/// them as it would real text, not a repeated line).
fn text(i: usize) -> String {
    const WORDS: [&str; 24] = [
        "namaste",
        "order",
        "delivery",
        "kab",
        "tak",
        "hoga",
        "size",
        "M",
        "L",
        "colour",
        "blue",
        "please",
        "exchange",
        "refund",
        "₹499",
        "COD",
        "available",
        "pincode",
        "400001",
        "thanks",
        "bhaiya",
        "photo",
        "bhejo",
        "urgent",
    ];
    let mut state = (i as u64).wrapping_mul(6_364_136_223_846_793_005) ^ 0x9e37_79b9_7f4a_7c15;
    let mut out = format!("#{i} ");
    while out.len() < 300 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        out.push_str(WORDS[(state >> 33) as usize % WORDS.len()]);
        out.push(if (state >> 20).is_multiple_of(9) {
            '?'
        } else {
            ' '
        });
    }
    out
}

// ---- run ------------------------------------------------------------------------------------

async fn run(items: usize, format: ExportFormat) -> Result<(), BoxError> {
    let sdk = sdk().await?;
    let env = |name: &str| std::env::var(name).map_err(|_| format!("{name} is not set"));
    let store = Store::new(aws_sdk_dynamodb::Client::new(&sdk), env("TABLE_NAME")?);
    let s3 = ecomdrive_aws::s3_client(&sdk);
    let bucket = env("DATA_BUCKET")?;
    let work_dir = std::env::temp_dir().join(format!("export-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work_dir)?;
    let exporter = Exporter {
        store: store.clone(),
        blobs: Blobs::new(s3.clone(), &bucket),
        work_dir: work_dir.clone(),
    };
    let m = merchant(items)?;
    let owner = UserId::parse("bench-owner").ok_or("user id")?;
    let record = ExportRecord::queued(m.clone(), format, owner, OffsetDateTime::now_utc());
    store.create_export(&record).await?;
    let job = ExportJob {
        merchant_id: m.clone(),
        export_id: record.id.clone(),
    };
    // Warm up the clients (connections, credentials) outside the measured part.
    store.export(&m, &record.id).await?;

    let before = Memory::read()?;
    let reset = Memory::reset_peak();
    let started = Instant::now();
    exporter.run(&job).await?;
    let secs = started.elapsed().as_secs_f64();
    let after = Memory::read()?;

    let done = store.export(&m, &record.id).await?.ok_or("export gone")?;
    if done.status != ExportStatus::Done {
        return Err(format!("export ended {:?}: {:?}", done.status, done.error).into());
    }
    let exported = done.counts.get("messages").copied().unwrap_or(0);
    if exported != items as u64 {
        return Err(format!("{exported} messages exported of {items}").into());
    }
    let key = done.object_key.ok_or("no object key")?;
    let zip_bytes = s3
        .head_object()
        .bucket(&bucket)
        .key(&key)
        .send()
        .await
        .map_err(|e| aws_sdk_s3::error::DisplayErrorContext(e).to_string())?
        .content_length
        .unwrap_or(0);
    let _ = std::fs::remove_dir_all(&work_dir);

    let mb = |kb: u64| kb as f64 / 1024.0;
    println!(
        "{items} items {fmt}: {secs:.1} s, {rate:.0} items/s, zip {zip:.1} MB, \
         RSS before {b:.1} MB, peak {p:.1} MB{since}, peak growth {g:.1} MB",
        fmt = match format {
            ExportFormat::Json => "json",
            ExportFormat::Csv => "csv ",
        },
        rate = items as f64 / secs,
        zip = zip_bytes as f64 / 1_048_576.0,
        b = mb(before.rss_kb),
        p = mb(after.peak_kb),
        since = if reset { "" } else { " (since start)" },
        g = mb(after.peak_kb.saturating_sub(before.rss_kb)),
    );
    Ok(())
}

/// The process's resident memory, from /proc/self/status.
struct Memory {
    rss_kb: u64,
    peak_kb: u64,
}

impl Memory {
    fn read() -> Result<Memory, BoxError> {
        let status = std::fs::read_to_string("/proc/self/status")?;
        let field = |name: &str| -> Result<u64, BoxError> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .ok_or_else(|| format!("{name} not in /proc/self/status").into())
        };
        Ok(Memory {
            rss_kb: field("VmRSS:")?,
            peak_kb: field("VmHWM:")?,
        })
    }

    /// Sets the peak (`VmHWM`) back to the current RSS (Linux ≥ 4.0); false when it could not.
    fn reset_peak() -> bool {
        std::fs::write("/proc/self/clear_refs", "5").is_ok()
    }
}
