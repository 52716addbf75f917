#!/usr/bin/env bash
# Create .venv and install faerec with its test tools. Safe to re-run; it only installs what is missing.
#
# torch is installed first, pinned, so that pip resolving the other packages never swaps in a different build:
#   FAEREC_TORCH_SPEC   the requirement to install (default torch==2.13.0)
#   FAEREC_TORCH_INDEX  an index URL for torch only, e.g. https://download.pytorch.org/whl/cpu for a CPU-only
#                       machine, or .../whl/cu126 for a given CUDA. Unset: pip's normal sources (PyPI gives the
#                       standard CUDA-enabled build on Linux; a machine whose pip is configured with a local
#                       wheel folder, like our CI, takes the CPU wheel from there).
# On Debian/Ubuntu as root it also installs tcmalloc (libtcmalloc-minimal4), which `faerec` runs under when
# present (faerec/allocator.py: flat epoch times and memory in long CPU runs). FAEREC_NO_APT=1 skips that;
# without it everything still works, on the C library's malloc.
# Last, it creates Prefect's default local database if it does not exist yet (flows/prefect_db.py).
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$python" -m venv .venv
pip=(.venv/bin/python -m pip --disable-pip-version-check -q)
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  spec="${FAEREC_TORCH_SPEC:-torch==2.13.0}"
  echo "setup: installing $spec" >&2
  if [ -n "${FAEREC_TORCH_INDEX:-}" ]; then
    "${pip[@]}" install "$spec" --index-url "$FAEREC_TORCH_INDEX"
  else
    "${pip[@]}" install "$spec"
  fi
fi
if ! .venv/bin/python -c "import faerec, pytest" >/dev/null 2>&1 || [ pyproject.toml -nt .venv/.faerec-installed ]; then
  echo "setup: installing faerec and its dependencies" >&2
  "${pip[@]}" install -e ".[dev]"
  touch .venv/.faerec-installed
fi
if [ -z "${FAEREC_NO_APT:-}" ] && [ "$(uname -s)" = Linux ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null \
   && ! .venv/bin/python -c "import sys; from faerec.allocator import choose; sys.exit(choose('auto') is None)"; then
  echo "setup: installing libtcmalloc-minimal4 (optional; FAEREC_NO_APT=1 skips it)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q libtcmalloc-minimal4 >/dev/null 2>&1 \
    || echo "setup: libtcmalloc-minimal4 could not be installed; faerec uses the C library's malloc" >&2
fi
# Prefect's local database, created now rather than by the first pipeline run's server (flows/prefect_db.py);
# FAEREC_NO_PREFECT_DB=1 skips it, and a database the user configured is never touched.
.venv/bin/python -m flows.prefect_db
echo "setup: ready (.venv/bin/faerec)" >&2
