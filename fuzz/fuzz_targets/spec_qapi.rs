#![cfg_attr(feature = "libfuzzer", no_main)]
// Property: see qmpcheck::fuzz::props::spec_qapi.
qmpcheck_fuzz::target!(qmpcheck::fuzz::props::spec_qapi);
