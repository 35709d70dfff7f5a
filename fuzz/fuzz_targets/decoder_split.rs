#![cfg_attr(feature = "libfuzzer", no_main)]
// Property: see qmpcheck::fuzz::props::decoder_split.
qmpcheck_fuzz::target!(qmpcheck::fuzz::props::decoder_split);
