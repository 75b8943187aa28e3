#!/usr/bin/env bash
# Install the Debian packages SSMamba builds against, if any is missing (sudo when not root).
set -euo pipefail
packages=(pkg-config libopenblas-dev libdnnl-dev liblmdb-dev libtiff-dev libzstd-dev libopenjp2-7-dev libpng-dev libturbojpeg0-dev libjpeg62-turbo-dev libopenslide-dev libjpeg-turbo-progs zlib1g-dev libopenmpi-dev openmpi-bin openssh-client)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# The sample fetch step uses pip (never at run time).
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3 python3-pip)
[ ${#missing[@]} -eq 0 ] && exit 0

command -v apt-get >/dev/null || { echo "install-deps: error: apt-get not found; install these packages by hand: ${missing[*]}" >&2; exit 1; }
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: error: not root and no sudo; as root run: apt-get install ${missing[*]}" >&2; exit 1; }
  sudo=sudo
fi
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
