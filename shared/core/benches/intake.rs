//! The webhook intake path's own work: verify `X-Hub-Signature-256` over the raw body, and (in
//! ingest) parse the delivery into events. Run: `cargo bench -p ecomdrive-core --bench intake`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ecomdrive_core::webhook::{parse_delivery, sign, signature_is_valid};
use serde_json::json;
use std::hint::black_box;

/// A delivery as Meta batches them: `entries` Pages with 10 events each (text, attachments,
/// echoes, delivery and read receipts), about 5 KB per entry.
fn delivery(entries: usize) -> Vec<u8> {
    let entry = |e: usize| {
        let page = format!("10000000000{e:04}");
        let events: Vec<_> = (0..10)
            .map(|i| {
                let psid = format!("2400000000{i:04}");
                let ts = 1_763_000_000_000i64 + i as i64;
                match i % 5 {
                    0 => json!({"sender": {"id": psid}, "recipient": {"id": page}, "timestamp": ts,
                        "message": {"mid": format!("m_{e}_{i}_{}", "x".repeat(80)), "text": "Hello, I ordered a blue kurta last week and it has not arrived yet. Can you check the status please?"}}),
                    1 => json!({"sender": {"id": psid}, "recipient": {"id": page}, "timestamp": ts,
                        "message": {"mid": format!("m_{e}_{i}"), "attachments": [{"type": "image", "payload": {"url": format!("https://scontent.xx.fbcdn.net/v/t1.15752-9/{}.jpg?_nc_cat=1&oh=abc&oe=def", "9".repeat(40))}}]}}),
                    2 => json!({"sender": {"id": page}, "recipient": {"id": psid}, "timestamp": ts,
                        "message": {"mid": format!("m_{e}_{i}"), "is_echo": true, "app_id": 100000000000999i64, "metadata": "ecomdrive:conv_01m811zzghkbsw5kvkagx6m6cy:msg_01m81204awvss6876th3akt7x6", "text": "It ships today"}}),
                    3 => json!({"sender": {"id": psid}, "recipient": {"id": page}, "timestamp": ts,
                        "delivery": {"mids": [format!("m_{e}_{i}")], "watermark": ts}}),
                    _ => json!({"sender": {"id": psid}, "recipient": {"id": page}, "timestamp": ts,
                        "read": {"watermark": ts}}),
                }
            })
            .collect();
        json!({"id": page, "time": 1_763_000_000_000i64, "messaging": events})
    };
    let body = json!({"object": "page", "entry": (0..entries).map(entry).collect::<Vec<_>>()});
    serde_json::to_vec(&body).expect("serializes")
}

fn intake(c: &mut Criterion) {
    let secret = b"bench-fake-app-secret";
    let mut group = c.benchmark_group("intake");
    for entries in [1usize, 10, 100] {
        let body = delivery(entries);
        let header = sign(secret, &body);
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(
            BenchmarkId::new("verify_signature", body.len()),
            &body,
            |b, body| {
                b.iter(|| {
                    assert!(signature_is_valid(
                        black_box(secret),
                        black_box(body),
                        Some(&header)
                    ))
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("verify_and_parse", body.len()),
            &body,
            |b, body| {
                b.iter(|| {
                    assert!(signature_is_valid(secret, body, Some(&header)));
                    let d = parse_delivery(black_box(body)).expect("parses");
                    assert_eq!(d.events.len(), entries * 10);
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, intake);
criterion_main!(benches);
