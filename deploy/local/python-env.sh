#!/usr/bin/env bash
# The project's Python environment in .mailstream/venv, rebuilt only when a pin changes.
source "$(dirname "$0")/lib.sh"

packages=(-e "$ROOT/schemas" -e "$ROOT/libs/core")
for svc in "$ROOT"/services/*/; do packages+=(-e "$svc"); done
packages+=(-e "$ROOT/services/api-gateway[test]")  # the HubSpot client and schemathesis, for its tests

stamp="$VENV/.stamp"
want=$(cat "$ROOT/constraints.txt" "$ROOT/pyproject.toml" "$ROOT"/schemas/pyproject.toml \
           "$ROOT"/libs/core/pyproject.toml "$ROOT"/services/*/pyproject.toml | sha256sum | cut -c1-16)
if [ -x "$PY" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
say "preparing the Python environment in $VENV"
command -v python3.11 >/dev/null || command -v python3 >/dev/null || die "python 3.11 is required"
PYTHON=$(command -v python3.11 || command -v python3)
"$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || die "$PYTHON is not Python 3.11"
[ -x "$PY" ] || "$PYTHON" -m venv "$VENV"
# The workspace's own tools and test dependencies: the root pyproject.toml's list, as written there.
mapfile -t workspace < <("$PYTHON" -c 'import sys, tomllib
print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]))' "$ROOT/pyproject.toml")
"$PY" -m pip install -q --disable-pip-version-check -c "$ROOT/constraints.txt" "${workspace[@]}" "${packages[@]}"
echo "$want" >"$stamp"
