#!/usr/bin/env bash
# The project's test command (README, .ci/run). Works on a fresh machine with no CUDA toolkit and no GPU.
#  0. Checks the formatting first (rustfmt.toml; `cargo fmt --all` fixes it) when rustfmt is installed.
#  1. Installs NVRTC, the CUDA headers and ptxas from PyPI into .cache/cuda (git-ignored), once, so the
#     NVRTC gate can compile every kernel. In CI (CI=true) a failed install is a failure; elsewhere the
#     NVRTC tests then say that they skipped.
#  2. Runs every test of the workspace (CPU ops, golden fixtures, kernels under the emulator, and
#     CUDA-vs-CPU parity when a GPU is usable) and checks that the benches compile.
#  3. Fails when a kernel of kernels/cuda was never launched under the emulator by the tests.
#  4. Builds the Python package with pip (maturin, the `dev` profile: a few minutes rather than a
#     release build; the `test` profile would build the library as a test harness), installs it into
#     a fresh venv under .cache/pyenv and runs its pytest suite against the `aural` binary just built.
#     (The C ABI's example is compiled and run by `cargo test`.)
#  5. Fuzzes every reader (fuzz/, scripts/fuzz.sh) for AURAL_FUZZ_SECONDS each (default 20; 0 skips),
#     installing cargo-fuzz first when it is missing (in CI a failed install is a failure).
set -euo pipefail
cd "$(dirname "$0")/.."

if cargo fmt --version >/dev/null 2>&1; then
  cargo fmt --all -- --check >/dev/null || { echo "error: code is not formatted as rustfmt.toml says: run 'cargo fmt --all'"; exit 1; }
else
  echo "note: rustfmt is not installed; formatting not checked"
fi

WHEELS=.cache/cuda
if [ ! -e "$WHEELS/nvidia/cuda_nvrtc/lib/libnvrtc.so.12" ] || [ ! -e "$WHEELS/nvidia/cuda_nvcc/bin/ptxas" ]; then
  echo "installing NVRTC, CUDA headers and ptxas (PyPI wheels) into $WHEELS ..."
  if ! python3 -m pip install --quiet --disable-pip-version-check --target "$WHEELS" \
      "nvidia-cuda-nvrtc-cu12==12.9.*" "nvidia-cuda-runtime-cu12==12.9.*" "nvidia-cuda-nvcc-cu12==12.9.*"; then
    if [ "${CI:-}" = "true" ]; then echo "error: could not install NVRTC wheels (needed in CI)"; exit 1; fi
    echo "warning: NVRTC wheels not installed; NVRTC tests will be skipped"
  fi
fi
export AURAL_CUDA_WHEELS="$PWD/$WHEELS"
export AURAL_CACHE_DIR="${AURAL_CACHE_DIR:-$PWD/.cache}"

# Every emulated launch is recorded here; afterwards every kernel of kernels/cuda must have run.
COV="$PWD/.cache/emu-coverage"
rm -rf "$COV"
export AURAL_EMU_COVERAGE_DIR="$COV"

cargo test --workspace --benches --no-run
cargo test --workspace
cargo run --quiet --profile test --bin aural -- doctor --emu-coverage "$COV"

PYENV="$PWD/.cache/pyenv"
rm -rf "$PYENV"
python3 -m venv "$PYENV"
MATURIN_PEP517_ARGS="--profile dev" "$PYENV/bin/pip" install --quiet --disable-pip-version-check ./python pytest
AURAL_CLI="${CARGO_TARGET_DIR:-$PWD/target}/debug/aural" "$PYENV/bin/python" -m pytest -q python/tests

FUZZ_SECONDS="${AURAL_FUZZ_SECONDS:-20}"
if [ "$FUZZ_SECONDS" != "0" ]; then
  if ! command -v cargo-fuzz >/dev/null 2>&1; then
    if ! cargo install --quiet cargo-fuzz --locked --version 0.13.2; then
      if [ "${CI:-}" = "true" ]; then echo "error: could not install cargo-fuzz (needed in CI)"; exit 1; fi
      echo "warning: cargo-fuzz not installed; fuzzing skipped"
      exit 0
    fi
  fi
  ./scripts/fuzz.sh "$FUZZ_SECONDS"
fi
