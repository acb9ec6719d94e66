//! What the export does with each kind of record: which file it goes to, and which of its fields
//! never leave the server. One exhaustive `match`, so a new kind does not compile until someone
//! has decided (POLICY A19: the export is complete).

use ecomdrive_aws::blobs::merchant_key;
use ecomdrive_aws::store::kinds::RecordKind;
use ecomdrive_core::ids::MerchantId;
use serde_json::{Map, Value};

/// The fate of a kind of record in an export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Treatment {
    /// Exported to the file `<name>.json` or `<name>.csv`, without the `hidden` fields.
    File {
        name: &'static str,
        hidden: &'static [&'static str],
    },
    /// Not exported, for this reason (shown in the manifest).
    Omitted(&'static str),
}

const NOT_IN_PARTITION: &str = "not in a merchant's partition";

pub fn treatment(kind: RecordKind) -> Treatment {
    use RecordKind::*;
    const fn file(name: &'static str) -> Treatment {
        Treatment::File { name, hidden: &[] }
    }
    const fn file_without(name: &'static str, hidden: &'static [&'static str]) -> Treatment {
        Treatment::File { name, hidden }
    }
    match kind {
        Merchant => file("merchant"),
        Membership => file("members"),
        Invitation => file("invitations"),
        Audit => file("audit"),
        RateCounter => Treatment::Omitted(
            "API rate-limit counters: internal bookkeeping that expires within minutes",
        ),
        // Integrations as status only: the tokens are KMS ciphertext that never leaves the server.
        MessengerAuthorization => {
            file_without("messenger_authorization", &["user_token_ciphertext"])
        }
        PageConnection => file_without("page_connections", &["token_ciphertext"]),
        Customer => file("customers"),
        // `version` is the optimistic-locking counter of the store.
        Conversation => file_without("conversations", &["version"]),
        Message => file("messages"),
        MidMarker => Treatment::Omitted(
            "marks that a Messenger message id was stored (so it is stored once); the message itself is in messages",
        ),
        ReplyKey => Treatment::Omitted(
            "a reply's idempotency key (so a retried send is sent once); the reply itself is in messages",
        ),
        AmazonConnection => file_without("amazon_connection", &["refresh_token_ciphertext"]),
        AmazonSyncState => Treatment::Omitted(
            "where the order sync got to (a watermark and Amazon's page token); the orders are in orders",
        ),
        Order => file("orders"),
        OrderLink => file("order_links"),
        // The claim is a sender's lease on the record while it talks to Amazon.
        Solicitation => file_without("solicitations", &["claim_token", "claimed_at_ms"]),
        SolicitationSettings => file("solicitation_settings"),
        Pace => Treatment::Omitted(
            "pacing of requests to Amazon's API (a token bucket): internal bookkeeping",
        ),
        // The fingerprint identifies the imported content; the archive key is our bucket's.
        Settlement => file_without("settlements", &["fingerprint", "started_ms", "archive_key"]),
        SettlementDay => file_without("settlement_days", &["fingerprint"]),
        SettlementSkuDay => file_without("settlement_sku_days", &["fingerprint"]),
        SettlementOrder => file_without("settlement_order_runs", &["fingerprint"]),
        SettlementUpload => file_without("settlement_uploads", &["object_key"]),
        SettlementImportState => Treatment::Omitted(
            "where the scheduled settlement import got to; the settlements are in settlements",
        ),
        SettlementReport => Treatment::Omitted(
            "marks of Amazon reports already imported; each settlement names its report_id",
        ),
        UnitCost => file("cogs"),
        ExportJob => Treatment::Omitted(
            "the export requests themselves: not business data, and the running one would be half-written; each is in audit (export.request, export.done)",
        ),
        User | MembershipIndex | EmailIndex | InvitationIndex | PageOwnerIndex
        | AmazonConnectedIndex | MerchantIndex | FacebookUserIndex | MerchantDeletedIndex
        | OAuthState | DeletionLink | DeletionReceipt | FormRateCounter => {
            Treatment::Omitted(NOT_IN_PARTITION)
        }
    }
}

/// Fields that look like secrets are never exported, whatever their kind: a guard for a field
/// added later without a decision here. `token_valid` (a status) is not one.
fn looks_secret(field: &str) -> bool {
    field.contains("ciphertext")
        || field.contains("secret")
        || field == "token"
        || field.ends_with("_token")
}

/// An attachment file to put in the zip: the bucket object and its path in the zip.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AttachmentFile {
    pub object_key: String,
    pub path: String,
}

/// A record as the export writes it.
#[derive(Clone, Debug, PartialEq)]
pub struct Rendered {
    pub file: &'static str,
    pub record: Map<String, Value>,
    pub attachments: Vec<AttachmentFile>,
}

/// The record the merchant gets for an item of `kind` (its table keys already dropped), or
/// `None` when the kind is not exported.
pub fn render(
    kind: RecordKind,
    m: &MerchantId,
    mut fields: Map<String, Value>,
) -> Option<Rendered> {
    let Treatment::File { name, hidden } = treatment(kind) else {
        return None;
    };
    fields.retain(|k, _| !hidden.contains(&k.as_str()) && !looks_secret(k));
    let attachments = match kind {
        RecordKind::Message => attachment_files(m, &mut fields),
        _ => Vec::new(),
    };
    Some(Rendered {
        file: name,
        record: fields,
        attachments,
    })
}

/// Points each stored attachment of a message at its file in the zip (`file`) instead of our
/// bucket key, and lists the files to copy. Only objects under the merchant's own
/// `attachments/` prefix are copied, so a record can never pull another merchant's object.
fn attachment_files(m: &MerchantId, fields: &mut Map<String, Value>) -> Vec<AttachmentFile> {
    let prefix = merchant_key(m, "attachments/");
    let mut files = Vec::new();
    let Some(Value::Array(list)) = fields.get_mut("attachments") else {
        return files;
    };
    for a in list.iter_mut().filter_map(Value::as_object_mut) {
        let key = match a.remove("object_key") {
            Some(Value::String(k)) => k,
            _ => continue,
        };
        let Some(rest) = key.strip_prefix(&prefix).filter(|r| safe_path(r)) else {
            continue;
        };
        let path = format!("attachments/{rest}");
        a.insert("file".into(), Value::String(path.clone()));
        files.push(AttachmentFile {
            object_key: key,
            path,
        });
    }
    files
}

/// A relative path of plain segments (ids), nothing a zip tool could resolve outside its folder.
fn safe_path(rest: &str) -> bool {
    !rest.is_empty()
        && rest.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        })
}

/// The kinds a merchant's partition can hold but the export leaves out, with why: the manifest
/// lists them so the merchant sees what was left out.
pub fn omitted() -> impl Iterator<Item = (RecordKind, &'static str)> {
    RecordKind::ALL
        .iter()
        .filter(|k| k.home() == ecomdrive_aws::store::kinds::Home::Merchant)
        .filter_map(|k| match treatment(*k) {
            Treatment::Omitted(reason) => Some((*k, reason)),
            Treatment::File { .. } => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecomdrive_aws::store::kinds::Home;
    use serde_json::json;

    fn fields(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn every_kind_of_a_merchants_partition_is_exported_or_left_out_with_a_reason() {
        let mut names = std::collections::HashSet::new();
        for k in RecordKind::ALL {
            match treatment(*k) {
                Treatment::File { name, .. } => {
                    assert_eq!(k.home(), Home::Merchant, "{k} is not the merchant's");
                    assert!(names.insert(name), "two kinds write {name}");
                }
                Treatment::Omitted(reason) => {
                    assert!(reason.len() > 10, "{k}: say why");
                    assert_eq!(
                        k.home() == Home::Merchant,
                        reason != NOT_IN_PARTITION,
                        "{k}"
                    );
                }
            }
        }
        assert_eq!(treatment(RecordKind::Merchant), file_named("merchant"));
        assert!(omitted().any(|(k, _)| k == RecordKind::MidMarker));
        assert!(!omitted().any(|(k, _)| k == RecordKind::User));
    }

    fn file_named(name: &'static str) -> Treatment {
        Treatment::File { name, hidden: &[] }
    }

    #[test]
    fn integrations_are_exported_as_status_without_any_token() {
        let m = MerchantId::generate();
        let amazon = render(
            RecordKind::AmazonConnection,
            &m,
            fields(json!({
                "selling_partner_id": "A1SELLER",
                "refresh_token_ciphertext": "AQICAH...",
                "token_valid": true,
                "connected_at": "2026-01-01T00:00:00Z",
            })),
        )
        .unwrap();
        assert_eq!(amazon.file, "amazon_connection");
        assert_eq!(
            Value::Object(amazon.record),
            json!({"selling_partner_id": "A1SELLER", "token_valid": true, "connected_at": "2026-01-01T00:00:00Z"})
        );
        let page = render(
            RecordKind::PageConnection,
            &m,
            fields(json!({"page_id": "1", "name": "Shop", "status": "active", "token_ciphertext": "x"})),
        )
        .unwrap();
        assert!(!page.record.contains_key("token_ciphertext"));
        let auth = render(
            RecordKind::MessengerAuthorization,
            &m,
            fields(json!({"pages": [], "user_token_ciphertext": "x", "access_token": "y"})),
        )
        .unwrap();
        assert_eq!(Value::Object(auth.record), json!({"pages": []}));
    }

    #[test]
    fn internal_fields_are_dropped_and_omitted_kinds_give_nothing() {
        let m = MerchantId::generate();
        let s = render(
            RecordKind::Solicitation,
            &m,
            fields(
                json!({"order_id": "1", "status": "sent", "claim_token": "t", "claimed_at_ms": 5}),
            ),
        )
        .unwrap();
        assert_eq!(
            Value::Object(s.record),
            json!({"order_id": "1", "status": "sent"})
        );
        assert_eq!(
            render(
                RecordKind::MidMarker,
                &m,
                fields(json!({"message_id": "x"}))
            ),
            None
        );
    }

    #[test]
    fn a_messages_stored_attachments_point_at_their_file_in_the_zip() {
        let m = MerchantId::generate();
        let own = merchant_key(&m, "attachments/conv_1/msg_1/0");
        let other = MerchantId::generate();
        let r = render(
            RecordKind::Message,
            &m,
            fields(json!({
                "text": "see photo",
                "attachments": [
                    {"kind": "image", "object_key": own, "state": "stored", "size": 3},
                    {"kind": "image", "object_key": null, "state": "too_large"},
                    {"kind": "image", "object_key": merchant_key(&other, "attachments/c/m/0"), "state": "stored"},
                    {"kind": "image", "object_key": merchant_key(&m, "attachments/../x"), "state": "stored"},
                ],
            })),
        )
        .unwrap();
        assert_eq!(
            r.attachments,
            vec![AttachmentFile {
                object_key: own,
                path: "attachments/conv_1/msg_1/0".into()
            }]
        );
        let list = r.record["attachments"].as_array().unwrap();
        assert_eq!(list[0]["file"], "attachments/conv_1/msg_1/0");
        assert!(list.iter().all(|a| a.get("object_key").is_none()));
        assert!(list[2].get("file").is_none() && list[3].get("file").is_none());
    }
}
