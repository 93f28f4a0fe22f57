# Installs whatever is missing for tinyrig, then builds the firmware.
# Sourced by scripts/start and scripts/test; idempotent and quick when nothing is missing.
set -euo pipefail

TINYRIG_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export TINYRIG_ROOT

# Debian packages the build, the emulated rig and the tests need.
TINYRIG_APT_PACKAGES=(
  make gcc g++ python3 git ca-certificates
  gcc-arm-none-eabi libnewlib-arm-none-eabi
  qemu-system-arm
  clang libclang-rt-14-dev llvm
  valgrind socat udev curl jq chromium
  iproute2 # ip and tc: the multi-host tests' network namespaces
  dataset-fashion-mnist
  postgresql # initdb and postgres: tests start throwaway clusters of the shared store (tools/proc/postgres.ts)
)

say() { printf '\033[1m[tinyrig]\033[0m %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@";
  elif command -v sudo >/dev/null 2>&1; then sudo "$@";
  else say "need root to run: $*"; return 1; fi
}

install_apt_packages() {
  local missing=() p
  local -A installed=()
  # one dpkg-query for the whole list (one per package cost ~20 ms each); it
  # fails when any is unknown, and still lists the others
  while read -r p status; do
    [ "$status" = "install ok installed" ] && installed[$p]=1
  done < <(dpkg-query -W -f='${Package} ${Status}\n' "${TINYRIG_APT_PACKAGES[@]}" 2>/dev/null || true)
  for p in "${TINYRIG_APT_PACKAGES[@]}"; do
    [ -n "${installed[$p]:-}" ] || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

check_node() {
  if ! command -v node >/dev/null 2>&1; then
    say "Node.js 20 or newer is required (not found on PATH)"; return 1
  fi
  local major; major="$(node --version)"; major="${major#v}"; major="${major%%.*}"
  if [ "$major" -lt 20 ]; then say "Node.js 20 or newer is required (found $(node -v))"; return 1; fi
}

install_npm_packages() {
  local stamp="$TINYRIG_ROOT/node_modules/.tinyrig-lock-sha"
  local want; want="$(sha256sum "$TINYRIG_ROOT/package-lock.json" | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    say "installing npm packages (npm ci)"
    (cd "$TINYRIG_ROOT" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" > "$stamp"
  fi
}

# What a firmware build reads: its sources and makefiles, tools/, the protocol
# vectors and the make settings from the environment, with sizes and mtimes.
firmware_inputs() {
  (cd "$TINYRIG_ROOT" && find firmware tools protocol/vectors -path firmware/build -prune -o -type f -printf '%p %s %T@\n' | LC_ALL=C sort)
  printf 'make settings: %s|%s|%s|%s\n' "${HOST_CC:-}" "${HOST_CFLAGS:-}" "${BUILD:-}" "${MAKEFLAGS:-}"
}

# What a build left: the executables under firmware/build (twin, tools, images, tests).
firmware_outputs() {
  (cd "$TINYRIG_ROOT" && find firmware/build -type f -perm -u+x -printf '%p %s %T@\n' 2>/dev/null | LC_ALL=C sort)
}

# A no-op make costs seconds (its variables run python3 and git), so it is
# skipped when the inputs are those of the last successful build and every
# executable that build left is still there, unchanged.
build_firmware() {
  local stamp="$TINYRIG_ROOT/firmware/build/.tinyrig-inputs" inputs
  inputs="$(firmware_inputs | sha256sum | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(head -n1 "$stamp")" = "$inputs" ] &&
    [ -z "$(tail -n +2 "$stamp" | LC_ALL=C comm -23 - <(firmware_outputs))" ]; then
    return 0
  fi
  say "building firmware (host twin, tools, QEMU images)"
  rm -f "$stamp"
  make -s -C "$TINYRIG_ROOT/firmware" -j"$(nproc)"
  { echo "$inputs"; firmware_outputs; } > "$stamp.tmp" && mv "$stamp.tmp" "$stamp"
}

tinyrig_bootstrap() {
  install_apt_packages
  check_node
  install_npm_packages
  build_firmware
}
