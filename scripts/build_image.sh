#!/usr/bin/env bash
# Build the project's CPU or GPU image from the Dockerfile.
#
#   scripts/build_image.sh [--variant cpu|gpu] [--tag TAG] [--base IMAGE] [--no-cache]
#
# --variant  cpu (default; prepare_data and evaluate) or gpu (pretrain and tune: CUDA wheels)
# --tag      the image's name (default: seqtutor:<variant>)
# --base     an image with Python 3.11 and pip on PATH (default: python:3.11-slim)
# --no-cache build every layer again (the base is kept)
#
# Starts dockerd when no daemon answers (as root). When the base is neither present nor
# pullable (no registry), builds a local Python 3.11 base, seqtutor-base:python3.11, from
# Debian bookworm's packages with debootstrap, from the mirror in this machine's apt sources.
# When the host's pip names a CA bundle (pip config `cert`, or PIP_CERT), the build's pip uses
# it, for networks whose proxy intercepts TLS. Prints the image's size and the build's time.
# Exit status: 0 built, 2 bad arguments, 3 no Docker daemon answers or can be started, 1 else.
set -euo pipefail
cd "$(dirname "$0")/.."

variant=cpu tag="" base=python:3.11-slim cache=()
while [ $# -gt 0 ]; do
  case "$1" in
    --variant) variant="${2:?--variant needs a value}"; shift 2 ;;
    --tag) tag="${2:?--tag needs a value}"; shift 2 ;;
    --base) base="${2:?--base needs a value}"; shift 2 ;;
    --no-cache) cache=(--no-cache); shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "build_image.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case "$variant" in cpu|gpu) ;; *) echo "build_image.sh: --variant must be cpu or gpu, not '$variant'" >&2; exit 2 ;; esac
tag="${tag:-seqtutor:$variant}"
LOCAL_BASE=seqtutor-base:python3.11

die() { echo "build_image.sh: $*" >&2; exit 1; }
no_daemon() { echo "build_image.sh: $*" >&2; exit 3; }

start_dockerd() {
  docker info >/dev/null 2>&1 && return 0
  command -v docker >/dev/null || no_daemon "the docker client is not installed (Debian: apt-get install docker.io)"
  command -v dockerd >/dev/null || no_daemon "no Docker daemon answers and dockerd is not installed (Debian: apt-get install docker.io)"
  [ "$(id -u)" = 0 ] || no_daemon "no Docker daemon answers; start one (dockerd needs root)"
  echo "starting dockerd (log: /tmp/seqtutor-dockerd.log)"
  nohup dockerd >/tmp/seqtutor-dockerd.log 2>&1 &
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && return 0; sleep 1; done
  no_daemon "dockerd did not answer within 60 s; see /tmp/seqtutor-dockerd.log"
}

# The first URI of the machine's Debian sources (deb822 or one-line form), else Debian's own.
debian_mirror() {
  local uri
  uri=$(grep -hE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
        | grep -v security | head -1 | sed -E 's/^URIs: *//; s/^deb (\[[^]]*\] )?//; s/ .*//') || true
  echo "${uri:-http://deb.debian.org/debian}"
}

build_local_base() {
  docker image inspect "$LOCAL_BASE" >/dev/null 2>&1 && { echo "base: $LOCAL_BASE (present)"; return 0; }
  command -v debootstrap >/dev/null || die "cannot pull $base and debootstrap is not installed (Debian: apt-get install debootstrap)"
  local root mirror
  root=$(mktemp -d /tmp/seqtutor-base.XXXXXX)
  mirror=$(debian_mirror)
  echo "base: building $LOCAL_BASE from Debian bookworm ($mirror) in $root"
  debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
    bookworm "$root" "$mirror" >/tmp/seqtutor-debootstrap.log 2>&1 \
    || die "debootstrap failed; see /tmp/seqtutor-debootstrap.log"
  # A virtual environment first on PATH: Debian's own Python refuses pip installs (PEP 668).
  chroot "$root" python3 -m venv /opt/venv
  chroot "$root" sh -c 'apt-get clean; rm -rf /var/lib/apt/lists/*'
  tar -C "$root" -c . | docker import \
    --change 'ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - "$LOCAL_BASE" >/dev/null
  rm -rf "$root"
}

start_dockerd
if ! docker image inspect "$base" >/dev/null 2>&1 && ! docker pull "$base" >/dev/null 2>&1; then
  echo "base: $base cannot be pulled"
  build_local_base
  base=$LOCAL_BASE
fi

cert="${PIP_CERT:-$(pip config get global.cert 2>/dev/null || true)}"
rm -f .build-ca.crt
if [ -n "$cert" ] && [ -f "$cert" ]; then cp "$cert" .build-ca.crt; fi
trap 'rm -f .build-ca.crt' EXIT

started=$(date +%s)
docker build "${cache[@]}" --build-arg "BASE=$base" --build-arg "VARIANT=$variant" -t "$tag" .
seconds=$(( $(date +%s) - started ))
size=$(docker image inspect -f '{{.Size}}' "$tag")
echo "built $tag (variant $variant, base $base): $(( size / 1000000 )) MB in ${seconds} s"
