//! Issue 5: see the module's tests (in progress).
