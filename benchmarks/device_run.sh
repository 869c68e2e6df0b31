#!/usr/bin/env bash
# Entry point on the lent GPU machine (a bare CUDA image with torch, no network): install the carried wheels of
# nnU-Net and its pure-Python dependencies, put stand-ins for two modules that nnU-Net imports but
# a run over packed arrays never calls (SimpleITK's 52 MB wheel would not fit the 64 MiB carry limit), then
# benchmarks/device_run.py. Prepared here with (see docs/BENCHMARKS.md, "GPU run"):
#   python benchmarks/device_pack.py            # .devpack/: the preprocessed dataset, 8-bit images
#   (wheels into .whl/, the list in docs/BENCHMARKS.md)
# and called through the device tool with carry [".devpack", ".whl"]:
#   bash benchmarks/device_run.sh --plan 600:supervised:0,1,2 600:unisemi:0,1,2 ...
set -u
cd "$(dirname "$0")/.."
[ -n "${SKIP_WHEELS:-}" ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  || { echo "wheel install failed"; exit 3; }
mkdir -p /tmp/stubs
for module in SimpleITK cc3d; do
  cat > "/tmp/stubs/$module.py" <<PY
"""Stand-in for $module on the device run: imported by nnU-Net, never called when training on packed arrays."""
class _Missing:
    def __init__(self, name):
        self.name = name
    def __call__(self, *args, **kwargs):
        raise RuntimeError(f"$module.{self.name} is not installed on the device machine")
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Missing(f"{self.name}.{name}")
def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    return _Missing(name)
PY
done
export PYTHONPATH="/tmp/stubs:/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
exec "${PYTHON:-python3}" benchmarks/device_run.py run --out "${OUT:-/tmp/unisemi_device_out}" "$@"
