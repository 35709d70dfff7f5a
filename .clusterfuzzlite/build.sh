#!/bin/bash -eu
# ClusterFuzzLite / OSS-Fuzz build: every cargo-fuzz target of fuzz/, optimised, copied to
# $OUT with its seed corpus (fuzz/corpus-seeds/TARGET, plus for the spec parsers the damaged
# QEMU documents of ../shared/seeds when that folder is present: they are copied at build
# time, never committed) and the QMP dictionary.
cd "$SRC/qmpcheck"
cargo fuzz build -O
release=fuzz/target/x86_64-unknown-linux-gnu/release
targets=$(sed -n 's/^name = "\([a-z_]*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^qmpcheck-fuzz$')
shared_seeds="$SRC/qmpcheck/../shared/seeds"
for target in $targets; do
    cp "$release/$target" "$OUT/"
    cp fuzz/dict/qmp.dict "$OUT/$target.dict"
    corpus=$(mktemp -d)
    cp fuzz/corpus-seeds/"$target"/* "$corpus"/ 2>/dev/null || true
    case "$target" in
        spec_*)
            if [ -d "$shared_seeds" ]; then
                cp "$shared_seeds"/*.txt "$corpus"/ 2>/dev/null || true
            fi
            ;;
    esac
    (cd "$corpus" && zip -q -r "$OUT/${target}_seed_corpus.zip" .)
    rm -rf "$corpus"
done
