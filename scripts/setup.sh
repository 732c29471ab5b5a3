#!/usr/bin/env bash
# Set up a fresh Debian 12 machine (as root) for hoist: system packages, npm dependencies, build.
# Idempotent: installs only what is missing. Usage: bash scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# command -> Debian package providing it
pkgs=()
need() { command -v "$1" >/dev/null 2>&1 || pkgs+=("$2"); }
need runc runc
need crun crun
need docker-registry docker-registry
need skopeo skopeo
need umoci umoci
need buildah buildah
need pigz pigz
need zstd zstd
need bzip2 bzip2
need xz xz-utils
need git git
need getfattr attr
need perl perl-base
need debootstrap debootstrap
need htpasswd apache2-utils
need openssl openssl
need tmux tmux
need tar tar
need mount mount
need slirp4netns slirp4netns
need ip iproute2
need unshare util-linux
need setpriv util-linux
need pgrep procps
# rootless builds (a non-root user): subordinate ids mapped by the setuid newuidmap/newgidmap;
# unshare and setpriv come with util-linux (essential)
need newuidmap uidmap
# foreign-architecture RUN steps (--platform linux/arm64, …): static QEMU user emulators; hoist
# registers them in a binfmt_misc instance private to each step (no host binfmt setup needed)
need qemu-aarch64-static qemu-user-static
# builds with no privileges at all (locked-down pods): RUN under proot (ptrace, no namespaces)
need proot proot
# ... and record the owners such a RUN gives files (chown, useradd) through fakeroot's preload library and daemon
need faked-sysv fakeroot
# the multi-platform tests check binaries' architectures with file(1)
need file file
[ -x /bin/busybox ] || pkgs+=(busybox-static)

if [ ${#pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup.sh: missing packages (${pkgs[*]}); run this script as root to install them" >&2
    exit 1
  fi
  echo "setup.sh: installing ${pkgs[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi

# Debian's docker-registry package may run a system service on port 5000: it is left alone
# (it may be the user's own registry); the tests start their own registries on free ports.

# `npm ci` refuses this lock file here: the registry this machine reaches lacks the other
# platforms' optional native packages (e.g. @unrs/resolver-binding-win32-*), so npm cannot
# record them. `npm install --no-save` installs exactly the locked versions for this platform
# and leaves package-lock.json as it is (plain `npm install` would rewrite it).
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ] || [ ! -e node_modules/.bin/hoist ]; then
  npm install --no-save --no-audit --no-fund
fi
npm run build --silent
