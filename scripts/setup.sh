#!/usr/bin/env bash
# One-command, idempotent set-up of trustrl on a fresh machine (Linux x86_64, Python 3.11, Node 20).
#
#   scripts/setup.sh            the environment for `trustrl demo` and the roles
#   scripts/setup.sh --test     also the test-only parts: the `ape` extra (eth-ape and two plugins, for
#                               tests/test_ape.py), the `envs` extra (reasoning-gym, for the reasoning_gym
#                               environment's tests), the `lora` extra (peft, for LoRA's tests), slither
#                               (static analysis of the contracts), the reference `toploc` built from its
#                               sdist and Debian's chromium (for the audit report's browser test; needs
#                               root + apt)
#
# It creates .venv (torch 2.13.0 CPU first, then the project with its pinned dependencies from
# constraints.txt), installs the npm parts into node_modules exactly as package-lock.json says (`npm ci`:
# solcjs, anvil, forge, OpenZeppelin, js-ipfs), and puts `solc` (a wrapper over solcjs), `anvil` and `forge`
# into .venv/bin, plus the solc file that ape-solidity looks for in .solcx/. Every step is skipped when its
# inputs have not changed; the independent slow steps (npm, pip, toploc's compile, apt) run in parallel.
# An optional step that fails (chromium: apt busy or offline) is reported and the set-up goes on; the
# tests that need it say why they skip.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
WITH_TEST=0
for arg in "$@"; do
  case "$arg" in
    --test) WITH_TEST=1 ;;
    *) echo "setup.sh: unknown option $arg (known: --test)" >&2; exit 2 ;;
  esac
done

PYTHON="${PYTHON:-python3}"
VENV="$ROOT/.venv"
STAMPS="$VENV/.stamps"
LOGS="$VENV/.setup-logs"
export PIP_DISABLE_PIP_VERSION_CHECK=1

log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*" >&2; }
digest() { cat "$@" 2>/dev/null | sha256sum | cut -c1-16; }
fresh() { [ -f "$STAMPS/$1" ] && [ "$(cat "$STAMPS/$1")" = "$2" ]; }
mark() { mkdir -p "$STAMPS"; printf '%s' "$2" > "$STAMPS/$1"; }

command -v node >/dev/null || { echo "setup.sh: node (>= 20) is required" >&2; exit 1; }
command -v npm >/dev/null || { echo "setup.sh: npm is required" >&2; exit 1; }
"$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] not in ((3, 11), (3, 12)))' \
  || { echo "setup.sh: Python 3.11 or 3.12 is required (set PYTHON=...)" >&2; exit 1; }

if [ ! -x "$VENV/bin/python" ]; then
  log "creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
fi
mkdir -p "$LOGS"
PIP=("$VENV/bin/python" -m pip)
SOLC_VERSION="$(node -p "require('./package.json').dependencies.solc")"

# Each slow step runs as a background job writing its own log; `finish` waits and reports failures: a
# required step's failure stops the set-up, an optional one's is a warning.
pids=()
names=()
optional=()
start_job() {  # name, function
  local name="$1"; shift
  ( "$@" ) > "$LOGS/$name.log" 2>&1 &
  pids+=("$!"); names+=("$name"); optional+=(0)
}
start_optional_job() {  # name, function: its failure does not stop the set-up
  start_job "$@"
  optional[${#optional[@]}-1]=1
}
finish() {
  local failed=0
  for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then
      if [ "${optional[$i]}" = 1 ]; then
        echo "setup.sh: warning: optional step '${names[$i]}' failed (the set-up goes on without it); its" \
          "log ($LOGS/${names[$i]}.log) ends with:" >&2
        tail -n 5 "$LOGS/${names[$i]}.log" >&2
        continue
      fi
      echo "setup.sh: step '${names[$i]}' failed; its log ($LOGS/${names[$i]}.log) ends with:" >&2
      tail -n 25 "$LOGS/${names[$i]}.log" >&2
      failed=1
    fi
  done
  pids=(); names=(); optional=()
  [ "$failed" = 0 ] || exit 1
}

# 1. Node parts: solcjs, anvil, forge, OpenZeppelin, js-ipfs, exactly as package-lock.json says (`npm ci` never
#    rewrites it). The lock lists every platform's optional anvil binary; package.json's overrides pin
#    what js-ipfs's install needs here (an optional dependency of an optional dependency, `headless`, points
#    at a GitHub tarball; the override takes the registry's release instead).
NPM_KEY="$(digest package.json package-lock.json)"
npm_step() { npm ci --no-audit --no-fund --loglevel=error && mark npm "$NPM_KEY"; }
if ! fresh npm "$NPM_KEY" || [ ! -d node_modules/solc ]; then
  log "installing npm parts (solc, anvil, forge, OpenZeppelin, ipfs) in the background; ~3 min the first time"
  start_job npm npm_step
fi

# 2. Test-only system part: Debian chromium for the audit report's headless-browser test.
apt_step() { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium; }
if [ "$WITH_TEST" = 1 ] && [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing Debian chromium in the background (optional: for the HTML report's browser test)"
    start_optional_job apt apt_step
  else
    log "chromium is missing and this is not root with apt: the browser test will be skipped"
  fi
fi

# 3. Python environment: torch 2.13.0 (CPU wheel) first, then the project with pinned dependencies.
if ! fresh torch "2.13.0"; then
  log "installing torch 2.13.0 (CPU) first"
  "${PIP[@]}" install -q "torch==2.13.0"
  mark torch "2.13.0"
fi
EXTRAS="dev"
[ "$WITH_TEST" = 1 ] && EXTRAS="dev,ape,envs,lora"
PY_DIGEST="$(digest pyproject.toml constraints.txt)"
PY_KEY="$EXTRAS-$PY_DIGEST"
if ! fresh python "$PY_KEY" && ! { [ "$WITH_TEST" = 0 ] && fresh python "dev,ape,envs,lora-$PY_DIGEST"; }; then
  log "installing trustrl and its pinned dependencies (extras: $EXTRAS)"
  "${PIP[@]}" install -q -c constraints.txt -e ".[$EXTRAS]"
  mark python "$PY_KEY"
fi

# 3b. Test-only: slither (scripts/slither_gate.py). In the foreground: no other pip runs at the same time.
#     Its dependency solc-select installs a `solc` of its own into .venv/bin; step 5 puts ours back.
if [ "$WITH_TEST" = 1 ] && ! fresh slither "$PY_KEY"; then
  log "installing slither (static analysis of the contracts)"
  "${PIP[@]}" install -q -c constraints.txt -e ".[analysis]"
  mark slither "$PY_KEY"
fi

# 4. Test-only: the reference TOPLOC implementation, compiled from its sdist against our torch
#    (its wheel does not import with torch 2.13); pip caches the built wheel for later runs.
toploc_step() {
  "${PIP[@]}" install -q -c constraints.txt setuptools wheel ninja \
    && "${PIP[@]}" install -q --no-build-isolation --no-binary toploc "toploc==0.1.6" \
    && mark toploc "0.1.6"
}
if [ "$WITH_TEST" = 1 ] && ! fresh toploc "0.1.6"; then
  log "building the reference toploc 0.1.6 from its sdist in the background (~3 min the first time)"
  start_job toploc toploc_step
fi

finish

# 5. Executables: solc over solcjs for py-solc-x and ape-solidity, anvil and forge on the venv's PATH.
ln -sf "$ROOT/bin/solc.js" "$VENV/bin/solc"
ln -sf "$ROOT/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil" "$VENV/bin/anvil"
ln -sf "$ROOT/bin/forge" "$VENV/bin/forge"
mkdir -p "$ROOT/.solcx"
ln -sf "$ROOT/bin/solc.js" "$ROOT/.solcx/solc-v$SOLC_VERSION"

log "ready: $("$VENV/bin/solc" --version | tail -1); anvil $("$VENV/bin/anvil" --version | head -1 | awk '{print $3}')"
