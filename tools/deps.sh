#!/usr/bin/env bash
# deps.sh - installs the Debian packages quarry needs, only those missing.
# Called by every make target; a quick no-op (pkg-config and command checks,
# no apt) when everything is present. Uses sudo when not root.
# --notebooks: also the Python packages the notebooks need (make report only).
set -euo pipefail

missing=()
need_pkg() { # need_pkg <pkg-config module> <debian package>
    if ! command -v pkg-config >/dev/null 2>&1 || ! pkg-config --exists "$1" 2>/dev/null; then
        missing+=("$2")
    fi
}
need_cmd() { # need_cmd <command> <debian package>
    command -v "$1" >/dev/null 2>&1 || missing+=("$2")
}
need_file() { # need_file <path glob> <debian package>
    compgen -G "$1" >/dev/null || missing+=("$2")
}

need_cmd cc build-essential
need_cmd make build-essential
need_cmd pkg-config pkg-config
need_pkg openblas libopenblas-dev       # sgemm for large F32/F16 matrix products
need_pkg hwloc libhwloc-dev             # core topology, thread pinning, cache sizes
need_pkg cmocka libcmocka-dev           # unit test framework
need_pkg papi libpapi-dev               # hardware counters in benchmarks
need_pkg libcjson libcjson-dev          # JSON: info --json, results, server
need_pkg libmicrohttpd libmicrohttpd-dev # HTTP server
need_pkg libcurl libcurl4-openssl-dev   # HTTP client: load generator, server tests
need_pkg vulkan libvulkan-dev           # Vulkan backend
need_pkg ompi-c libopenmpi-dev          # sharding across MPI ranks
need_cmd mpirun openmpi-bin
need_cmd glslc glslc                    # GLSL -> SPIR-V at build time
need_cmd clang clang                    # fuzz targets (libFuzzer), clang warning check
need_file "/usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a" libclang-rt-14-dev
need_file "/usr/share/vulkan/icd.d/lvp_icd.*.json" mesa-vulkan-drivers # lavapipe: Vulkan on the CPU
need_cmd valgrind valgrind              # instruction-count benchmark gate

# ---- notebooks group: only `make report` asks for it (tools/deps.sh --notebooks) ----
# Debian's own Python (/usr/bin/python3): a python3 earlier on PATH may be
# another interpreter that cannot see these packages.
need_py() { # need_py <module> <debian package>
    /usr/bin/python3 -c "import $1" >/dev/null 2>&1 || missing+=("$2")
}
if [ "${1:-}" = --notebooks ]; then
    need_py numpy python3-numpy
    need_py matplotlib python3-matplotlib
    need_py nbformat python3-nbformat
    need_py ipykernel python3-ipykernel
    need_py nbconvert jupyter-nbconvert
    need_cmd jupyter-nbconvert jupyter-nbconvert
fi

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

# de-duplicate
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
echo "deps: installing missing packages: ${missing[*]}" >&2
SUDO=
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
        echo "deps: not root and no sudo; install these packages: ${missing[*]}" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: done" >&2
