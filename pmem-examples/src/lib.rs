//! Persistent data structures and programs built on the public pmem-core API.
