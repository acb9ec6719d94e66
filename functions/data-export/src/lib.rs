//! `data-export`: a merchant's data, every record kind, into one zip in S3 (POLICY A19).
