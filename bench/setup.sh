#!/usr/bin/env bash
# The bench's own setup (not CI's scripts/setup.sh): Debian's docker.io, whose dockerd the build
# benchmark starts privately as the BuildKit reference, and hyperfine for the start-up bench.
# Idempotent; installs as root only what is missing. Usage: bash bench/setup.sh
set -euo pipefail
pkgs=()
[ -x /usr/sbin/dockerd ] && [ -x /usr/bin/docker ] || pkgs+=(docker.io)
command -v hyperfine >/dev/null 2>&1 || pkgs+=(hyperfine)
[ ${#pkgs[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "bench/setup.sh: missing packages (${pkgs[*]}); run it as root to install them" >&2
  exit 1
fi
echo "bench/setup.sh: installing ${pkgs[*]}" >&2
# the package's own service is never started (policy-rc.d / no init): the bench runs its own dockerd
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${pkgs[@]}" >&2
