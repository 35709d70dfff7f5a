#![cfg_attr(feature = "libfuzzer", no_main)]
// Property: see qmpcheck::fuzz::props::reply_validation.
qmpcheck_fuzz::target!(qmpcheck::fuzz::props::reply_validation);
