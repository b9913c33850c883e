#!/usr/bin/env bash
# Builds the fuzz targets in fuzz/ and runs each for a short, bounded time from the checked-in
# seeds (fuzz/seeds/<target>): a smoke test that the targets build and that the parsers
# survive a few hundred thousand mutated inputs with their properties intact. Not a
# substitute for long runs: `cd fuzz && cargo +nightly fuzz run <target>`.
#   scripts/fuzz-smoke.sh              every target, FUZZ_SECONDS (15) each
#   scripts/fuzz-smoke.sh canonicalize one target
# A failing input is saved under fuzz/artifacts/<target>/ and the script exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
CARGO_FUZZ_VERSION=0.13.2
SECONDS_EACH="${FUZZ_SECONDS:-15}"

if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
  echo "installing cargo-fuzz $CARGO_FUZZ_VERSION"
  scripts/install-tool.sh cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi

# cargo-fuzz is made for nightly, which the sanitizers need. Without one (a toolchain may not
# be downloadable here) stable builds these targets: without a sanitizer every flag
# cargo-fuzz passes is a stable one.
if rustup run nightly rustc --version >/dev/null 2>&1 \
  || rustup toolchain install nightly --profile minimal >/dev/null 2>&1; then
  toolchain=+nightly
else
  echo "no nightly toolchain: building the fuzz targets with stable"
  toolchain=+stable
fi

cd fuzz
# Not a workspace member, so not in the workspace's `cargo fmt --all --check`.
cargo fmt --check
if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo "$toolchain" fuzz list)
fi

# No sanitizer: the code under test is safe Rust, and what a short run can find is a panic
# or a broken property, which needs throughput more than ASan's checks. 16 codegen units
# build about 40 s sooner than cargo-fuzz's default of one, for slightly slower runs.
flags=(--sanitizer none --codegen-units 16)
cargo "$toolchain" fuzz build "${flags[@]}"
for t in "${targets[@]}"; do
  echo "fuzz: $t for ${SECONDS_EACH}s"
  mkdir -p "corpus/$t"
  dict=()
  [ -f "dicts/$t.dict" ] && dict=("-dict=dicts/$t.dict")
  log="target/smoke-$t.log"
  # -timeout: one input taking 10 s is a hang worth failing on.
  if cargo "$toolchain" fuzz run "${flags[@]}" "$t" "corpus/$t" "seeds/$t" -- \
    -max_total_time="$SECONDS_EACH" -timeout=10 -print_final_stats=1 "${dict[@]}" >"$log" 2>&1; then
    grep -E '^(#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units)' "$log" || true
  else
    status=$?
    tail -n 60 "$log" >&2
    echo "fuzz: $t failed (exit $status): input in fuzz/artifacts/$t/, log in fuzz/$log" >&2
    exit "$status"
  fi
done
