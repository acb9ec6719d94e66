//! `retention-sweeper`: applies the retention table of POLICY.md every day (A20, A5, E16).
