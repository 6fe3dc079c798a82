//! Compile-time behaviour of `#[derive(Persistent)]`: every rejected input has a minimal case in
//! `ui/fail` whose expected diagnostics are in the `.stderr` beside it, and every accepted shape
//! has a case in `ui/pass`.
//!
//! After an intended change to a message, regenerate with `TRYBUILD=overwrite` and review the
//! diff of every `.stderr`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
