//! HTTP server. STUB.
