//! Property tests of the parser (being written).
