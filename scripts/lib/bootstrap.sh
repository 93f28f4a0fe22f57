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
  valgrind socat udev
  dataset-fashion-mnist
)

say() { printf '\033[1m[tinyrig]\033[0m %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@";
  elif command -v sudo >/dev/null 2>&1; then sudo "$@";
  else say "need root to run: $*"; return 1; fi
}

install_apt_packages() {
  local missing=()
  for p in "${TINYRIG_APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
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
  local major; major="$(node -p 'process.versions.node.split(".")[0]')"
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

build_firmware() {
  say "building firmware (host twin, tools, QEMU images)"
  make -s -C "$TINYRIG_ROOT/firmware" -j"$(nproc)"
}

tinyrig_bootstrap() {
  install_apt_packages
  check_node
  install_npm_packages
  build_firmware
}
