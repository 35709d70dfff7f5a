#![cfg_attr(feature = "libfuzzer", no_main)]
// Property: see qmpcheck::fuzz::props::emulator_session.
qmpcheck_fuzz::target!(qmpcheck::fuzz::props::emulator_session);
