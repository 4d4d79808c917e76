#!/usr/bin/env bash
# Python 3.13 for the test lines, built from Debian's source package and cached outside the work tree.
#
# Prints the interpreter's path on its last stdout line; everything else goes to stderr. With the
# cache present that is all it does (well under a second). Otherwise (a fresh CI machine, Debian 12
# bookworm, which ships no 3.13) it builds one, about 4.5 minutes on two cores:
#
# 1. a deb-src entry for Debian's trixie suite on the mirror the machine already uses (sources
#    only: no trixie binary package can ever be installed through it), and `apt-get update` of
#    that entry alone when apt does not know python3.13's source yet;
# 2. the build dependencies, from bookworm, those missing only;
# 3. `apt-get source --download-only python3.13/trixie` (apt checks it against the signed index)
#    and the upstream tarball unpacked in a temporary directory; Debian's patches are not applied,
#    since they move site-packages to dist-packages, which a private prefix does not want;
# 4. `./configure --prefix=CACHE --without-ensurepip`, make, and `make install` into a staging
#    directory beside the cache (DESTDIR), so the prefix compiled in is the cache's own;
# 5. ssl, sqlite3, ctypes, lzma, bz2, zlib (and hashlib with OpenSSL) must import, or it fails;
# 6. a marker file, then one rename puts the staged tree in place. An interrupted build leaves only
#    a staging directory (removed on exit, or by the next build), never a cache that looks done.
#
# Cache: $VBRAIN_PYTHON_CACHE, else ${XDG_CACHE_HOME:-$HOME/.cache}/airflow-provider-vbrain/python3.13.
# Package installs need root, or sudo. Builds are serialised with flock, so parallel callers wait.
#
# Usage: PY313=$(scripts/python313.sh | tail -n 1)

set -euo pipefail

readonly VERSION=3.13
readonly MARKER=.vbrain-python-complete
readonly BUILD_DEPS=(
    build-essential dpkg-dev pkg-config xz-utils
    libssl-dev libffi-dev zlib1g-dev libbz2-dev liblzma-dev libsqlite3-dev libreadline-dev uuid-dev
)
readonly SOURCES_FILE=/etc/apt/sources.list.d/airflow-provider-vbrain-trixie-src.sources

cache=${VBRAIN_PYTHON_CACHE:-${XDG_CACHE_HOME:-${HOME:?HOME is not set}/.cache}/airflow-provider-vbrain/python$VERSION}
case $cache in /*) ;; *) cache=$PWD/$cache ;; esac
cache=${cache%/}
python=$cache/bin/python$VERSION

# The fast path: nothing is run, nothing is written.
if [[ -f $cache/$MARKER && -x $python ]]; then
    echo "$python"
    exit 0
fi

exec 3>&1 1>&2 # fd 3 is stdout, for the path alone; everything else goes to stderr

log() { echo "[python313 $(date +%H:%M:%S)] $*"; }
die() {
    log "error: $*"
    exit 1
}

as_root() {
    if [[ $EUID -eq 0 ]]; then
        env DEBIAN_FRONTEND=noninteractive "$@"
    elif command -v sudo >/dev/null; then
        sudo env DEBIAN_FRONTEND=noninteractive "$@"
    else
        die "installing Debian packages needs root or sudo: $*"
    fi
}

# Runs a long build step with its output in a log; the log's end is shown when it fails.
logged() {
    local name=$1 status=0
    shift
    "$@" >"$work/$name.log" 2>&1 || status=$?
    if [[ $status -ne 0 ]]; then
        tail -n 60 "$work/$name.log"
        die "$name failed (exit $status): $*"
    fi
}

parent=$(dirname "$cache")
mkdir -p "$parent"
exec 9>"$parent/.python$VERSION.lock"
flock 9
if [[ -f $cache/$MARKER && -x $python ]]; then # built by another caller while we waited
    echo "$python" >&3
    exit 0
fi
if [[ -e $cache ]]; then
    # Not ours to delete unless it looks like an unfinished Python prefix.
    if [[ -d $cache/lib/python$VERSION || -z $(ls -A "$cache") ]]; then
        log "removing an incomplete cache at $cache"
        rm -rf "$cache"
    else
        die "$cache exists but holds no finished Python $VERSION build; move it away or set VBRAIN_PYTHON_CACHE"
    fi
fi
rm -rf "$parent"/.python$VERSION.staging.* # left by interrupted builds (we hold the lock)

work=$(mktemp -d "${TMPDIR:-/tmp}/python$VERSION-build.XXXXXX")
staging=$(mktemp -d "$parent/.python$VERSION.staging.XXXXXX")
trap 'rm -rf "$work" "$staging"' EXIT
started=$SECONDS
log "building Python $VERSION into $cache (a few minutes; work directory $work)"

# 1. The deb-src entry, on the mirror the existing sources name.
mirror=
for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] || continue
    mirror=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i ~ /\/debian\/?$/) { print $i; exit } }' "$f")
    if [[ -n $mirror ]]; then break; fi
done
if [[ -z $mirror && -f /etc/apt/sources.list ]]; then
    mirror=$(awk '$1 ~ /^deb/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z+]+:\/\/.*\/debian\/?$/) { print $i; exit } }' \
        /etc/apt/sources.list)
fi
mirror=${mirror:-http://deb.debian.org/debian}
mirror=${mirror%/}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
entry="Types: deb-src
URIs: $mirror
Suites: trixie
Components: main"
if [[ -f $keyring ]]; then entry+=$'\n'"Signed-By: $keyring"; fi
if [[ ! -f $SOURCES_FILE || "$(cat "$SOURCES_FILE")" != "$entry" ]]; then
    log "adding $SOURCES_FILE (deb-src trixie on $mirror)"
    printf '%s\n' "$entry" | as_root tee "$SOURCES_FILE" >/dev/null
fi
if [[ -z $(apt-cache showsrc --only-source "python$VERSION" 2>/dev/null) ]]; then
    log "apt-get update of the trixie sources"
    as_root apt-get update -qq \
        -o Dir::Etc::sourcelist="$SOURCES_FILE" -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0
fi

# 2. Build dependencies, those missing only.
missing=()
for pkg in "${BUILD_DEPS[@]}"; do
    [[ $(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null) == "install ok installed" ]] || missing+=("$pkg")
done
if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    if ! as_root apt-get install -y -qq --no-install-recommends "${missing[@]}"; then
        log "apt-get update, then installing again"
        as_root apt-get update -qq
        as_root apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi
fi

# 3. The source package; as root, apt downloads as _apt, who must be able to write there.
mkdir "$work/download" "$work/src"
if [[ $EUID -eq 0 ]] && id _apt >/dev/null 2>&1; then chown _apt "$work/download"; fi
log "apt-get source python$VERSION/trixie"
(cd "$work/download" && apt-get source -qq --download-only "python$VERSION/trixie")
shopt -s nullglob
tarballs=("$work"/download/python"$VERSION"_*.orig.tar.{xz,gz,bz2})
((${#tarballs[@]})) || die "no upstream tarball among: $(ls "$work/download")"
log "unpacking $(basename "${tarballs[0]}")"
tar -xf "${tarballs[0]}" -C "$work/src"
configures=("$work"/src/*/configure)
((${#configures[@]})) || die "no configure script in $(basename "${tarballs[0]}")"
src=$(dirname "${configures[0]}")

# 4. Build, and install into the staging directory with the cache as the prefix.
cd "$src"
unset PYTHONPATH PYTHONHOME PYTHONSTARTUP CFLAGS CPPFLAGS LDFLAGS
log "configure"
logged configure ./configure --prefix="$cache" --without-ensurepip
log "make -j$(nproc)"
logged make make -j"$(nproc)"
log "make install (staged)"
logged install make install DESTDIR="$staging"

# 5. The modules the tests and their dependencies need.
staged=$staging$cache
log "checking ssl, sqlite3, ctypes, lzma, bz2, zlib, hashlib"
if ! "$staged/bin/python$VERSION" - <<'EOF'
import importlib
import sys

failed = []
for name in ("ssl", "sqlite3", "ctypes", "lzma", "bz2", "zlib", "hashlib", "_hashlib"):
    try:
        importlib.import_module(name)
    except ImportError as error:
        failed.append(f"{name}: {error}")
if failed:
    sys.exit("cannot import " + "; ".join(failed))
import ssl

print(sys.version.split()[0], ssl.OPENSSL_VERSION)
EOF
then
    grep -A 12 -E 'necessary bits to build|Failed to build these modules|Following modules built successfully but were removed' \
        "$work/make.log" || true
    die "the built Python lacks required modules (its build's report on modules is above)"
fi

# 6. Marker, then the rename that makes the cache exist.
"$staged/bin/python$VERSION" -c 'import sys; print(sys.version)' >"$staged/$MARKER"
mv "$staged" "$cache"
"$python" -c 'import sys; assert sys.prefix == sys.argv[1], sys.prefix' "$cache" || die "$python reports the wrong prefix"
log "built in $((SECONDS - started)) s: $python"
echo "$python" >&3
