#!/usr/bin/env bash
# Prints the README's configuration reference from the binaries' own config tables:
# variables every service shares once, then each service's own.
set -euo pipefail
build=${1:-build}
cd "$(dirname "$0")/.."
services=(gateway auth registry webhooks media providers)
header='| variable | type | default | description |
|---|---|---|---|'
declare -A rows
for s in "${services[@]}"; do
  rows[$s]=$("$build/bin/voxi-$s" --config-reference)
done
common=$(printf '%s\n' "${rows[gateway]}" | while IFS= read -r row; do
  all=1
  for s in "${services[@]}"; do
    grep -qxF -- "$row" <<<"${rows[$s]}" || { all=0; break; }
  done
  if [[ $all -eq 1 ]]; then printf '%s\n' "$row"; fi
done)
printf '### Every service\n\n%s\n%s\n' "$header" "$common"
for s in "${services[@]}"; do
  own=$(grep -vxF -- "$common" <<<"${rows[$s]}" || true)
  printf '\n### voxi-%s\n\n%s\n%s\n' "$s" "$header" "$own"
done
