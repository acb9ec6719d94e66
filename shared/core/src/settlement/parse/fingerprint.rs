//! The file's fingerprint: SHA-256 over its decoded lines, each followed by `\n`.
//!
//! Hashing costs about as much as all the rest of the parsing, so a big file is hashed on a
//! second thread: lines are gathered into 1 MiB batches that the hasher takes in turn. A small
//! file (one batch) is hashed at the end, without a thread.

use sha2::{Digest, Sha256};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

const BATCH_BYTES: usize = 1 << 20;
/// Batches waiting for the hasher: bounds the memory if it falls behind.
const BATCHES_IN_FLIGHT: usize = 2;

pub(super) struct Fingerprint {
    batch: Vec<u8>,
    hasher: Hasher,
}

enum Hasher {
    /// No batch was full yet.
    NotStarted,
    OnThread {
        full: SyncSender<Vec<u8>>,
        emptied: Receiver<Vec<u8>>,
        done: JoinHandle<Sha256>,
    },
    /// A thread could not be started: hash here.
    Here(Sha256),
}

impl Fingerprint {
    pub(super) fn new() -> Self {
        Self {
            batch: Vec::new(),
            hasher: Hasher::NotStarted,
        }
    }

    pub(super) fn add_line(&mut self, text: &str) {
        self.batch.extend_from_slice(text.as_bytes());
        self.batch.push(b'\n');
        if self.batch.len() >= BATCH_BYTES {
            self.hand_over_batch();
        }
    }

    /// The SHA-256 (hex) of every line added.
    pub(super) fn finish(self) -> String {
        let sha = match self.hasher {
            Hasher::NotStarted => Sha256::new().chain_update(&self.batch),
            Hasher::Here(sha) => sha.chain_update(&self.batch),
            Hasher::OnThread { full, done, .. } => {
                // If the hasher is gone, `join` below says why.
                let _ = full.send(self.batch);
                drop(full);
                match done.join() {
                    Ok(sha) => sha,
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
        };
        hex::encode(sha.finalize())
    }

    fn hand_over_batch(&mut self) {
        if let Hasher::NotStarted = self.hasher {
            self.hasher = start_hasher();
        }
        match &mut self.hasher {
            Hasher::OnThread { full, emptied, .. } => {
                let next = emptied
                    .try_recv()
                    .unwrap_or_else(|_| Vec::with_capacity(BATCH_BYTES + BATCH_BYTES / 8));
                let batch = std::mem::replace(&mut self.batch, next);
                // A send fails only if the hasher died; `finish` then reports its panic.
                let _ = full.send(batch);
            }
            Hasher::Here(sha) => {
                sha.update(&self.batch);
                self.batch.clear();
            }
            Hasher::NotStarted => {}
        }
    }
}

fn start_hasher() -> Hasher {
    let (full, to_hash) = sync_channel::<Vec<u8>>(BATCHES_IN_FLIGHT);
    let (give_back, emptied) = sync_channel::<Vec<u8>>(BATCHES_IN_FLIGHT + 2);
    let hash_batches = move || {
        let mut sha = Sha256::new();
        for mut batch in to_hash {
            sha.update(&batch);
            batch.clear();
            // The parser may have enough batches already: then this one is dropped.
            let _ = give_back.try_send(batch);
        }
        sha
    };
    match std::thread::Builder::new()
        .name("settlement-fingerprint".into())
        .spawn(hash_batches)
    {
        Ok(done) => Hasher::OnThread {
            full,
            emptied,
            done,
        },
        Err(_) => Hasher::Here(Sha256::new()),
    }
}
