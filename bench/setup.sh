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
# docker.io's own service must not start (it would set up iptables and a bridge on the host): a
# policy-rc.d denies it during the install, and the units are disabled afterwards. The bench
# runs its own private dockerd.
policy=/usr/sbin/policy-rc.d
own_policy=
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && own_policy=1
  trap 'rm -f "$policy"' EXIT
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >&2
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  systemctl disable --now docker.service docker.socket >/dev/null 2>&1 || true
fi
[ -n "$own_policy" ] && rm -f "$policy"
exit 0
