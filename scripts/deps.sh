# Sourced by scripts/test.sh: finds what the tests need beyond Go and installs
# it, or says exactly what to install.
#
# sori_deps_missing  prints the Debian packages that are missing, one a line
# sori_deps_ensure   installs them with apt-get when running as root (unless
#                    SORI_TEST_NO_INSTALL is set); otherwise prints the command
#                    that installs them and returns 1
# sori_npm_dirs      prints each directory with a package.json of the project
# sori_npm_ci        runs `npm ci` where node_modules does not match the lock file

# Node.js this old lacks what the tests use (node --test with concurrency and
# timeouts, global fetch); Debian 12's nodejs (18) is too old.
sori_node_major_min=20

# sori_node_major prints the installed Node.js major version, or 0.
sori_node_major() {
  local v
  v=$(node --version 2>/dev/null) || { echo 0; return; }
  v=${v#v}
  echo "${v%%.*}"
}

sori_deps_missing() {
  if ! command -v node >/dev/null; then echo nodejs; fi
  if ! command -v npm >/dev/null; then echo npm; fi
  # The README's examples use curl; the docs test runs them.
  if ! command -v curl >/dev/null; then echo curl; fi
  # The browser tests drive Debian's chromium ($CHROMIUM names another one).
  if [ -n "${CHROMIUM:-}" ]; then
    [ -x "$CHROMIUM" ] || echo chromium
  elif ! command -v chromium >/dev/null; then
    echo chromium
  fi
  # Emoji glyphs for reactions and file icons in the browser tests' screenshots.
  [ -e /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || echo fonts-noto-color-emoji
  # The PostgreSQL store tests run in a throwaway cluster made by pg_virtualenv,
  # unless SORI_TEST_POSTGRES names a database already.
  if [ -z "${SORI_TEST_POSTGRES:-}" ]; then
    if ! command -v pg_virtualenv >/dev/null || ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
      echo postgresql
    fi
  fi
}

sori_deps_ensure() {
  local missing
  missing=$(sori_deps_missing | tr '\n' ' ')
  missing=${missing% }
  if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ] && [ -z "${SORI_TEST_NO_INSTALL:-}" ] && command -v apt-get >/dev/null; then
      echo "== installing Debian packages the tests need: $missing"
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq
      # shellcheck disable=SC2086 # one word per package
      apt-get install -y -qq --no-install-recommends $missing
      missing=$(sori_deps_missing | tr '\n' ' ')
      missing=${missing% }
      if [ -n "$missing" ]; then
        echo "error: still missing after apt-get install: $missing" >&2
        return 1
      fi
    else
      cat >&2 <<EOF
error: the tests need Debian packages that are not installed: $missing
Install them, then run the tests again:

    sudo apt-get install --no-install-recommends $missing

(Run as root, the test command installs them itself. Set SORI_TEST_POSTGRES to a
PostgreSQL DSN to use your own database instead of postgresql's pg_virtualenv.)
EOF
      return 1
    fi
  fi
  local major
  major=$(sori_node_major)
  if [ "$major" -lt "$sori_node_major_min" ]; then
    cat >&2 <<EOF
error: the tests need Node.js $sori_node_major_min or newer; $(command -v node) is $(node --version).
Debian 12 ships Node.js 18: install Node.js $sori_node_major_min+ (Debian 13's nodejs package,
or the nodejs package of NodeSource's Debian repository), then run the tests again.
EOF
    return 1
  fi
}

sori_npm_dirs() {
  git ls-files '*package.json' | grep -v node_modules | xargs -r -n1 dirname
}

sori_npm_ci() {
  local dir
  for dir in $(sori_npm_dirs); do
    # npm ci wipes and reinstalls node_modules; skip it when the copy of the
    # lock file it left there last time still matches.
    if ! cmp -s "$dir/package-lock.json" "$dir/node_modules/.sori-package-lock.json"; then
      echo "== npm ci in $dir"
      (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
      mkdir -p "$dir/node_modules"
      cp "$dir/package-lock.json" "$dir/node_modules/.sori-package-lock.json"
    fi
  done
}
