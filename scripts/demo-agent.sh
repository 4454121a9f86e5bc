#!/usr/bin/env bash
# Creates (idempotently) the demo agent of the local stack and maps the number "demo" to it,
# through the REST API with .run/admin_api_key: `sip:demo@<host>:5060` then reaches a flow
# agent (greeting, a menu "say sales or support, or press 1 or 2", a prompt per branch,
# goodbye) that runs offline (pocketsphinx keywords, flite voice). Run by scripts/run.sh
# after the services are ready; a number "demo" that exists already is left as it is.
#
# Usage: scripts/demo-agent.sh   (API at http://127.0.0.1:$VOXI_GATEWAY_HTTP_PORT, default 8080)
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$VOXI_REPO"

API="http://127.0.0.1:${VOXI_GATEWAY_HTTP_PORT:-$VOXI_GATEWAY_HTTP_PORT_DEFAULT}"
KEY_FILE="$VOXI_REPO/.run/admin_api_key"
[[ -r "$KEY_FILE" ]] || die "no $KEY_FILE (run \`make run\` first)"
KEY=$(<"$KEY_FILE")

api() { # METHOD PATH [JSON]
  local args=(-sS --max-time 10 -X "$1" -H "Authorization: Bearer $KEY" "$API$2")
  [[ $# -ge 3 ]] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
  curl "${args[@]}"
}

existing=$(api GET '/v1/phone-numbers?limit=100' |
  jq -r '.data[]? | select(.number == "demo") | .agent_id // ""' | head -n 1) ||
  die "cannot list phone numbers at $API"
if [[ -n "$existing" ]]; then
  log "demo agent: the number \"demo\" already routes to $existing"
  exit 0
fi

read -r -d '' AGENT <<'JSON' || true
{
  "name": "VoxiHub demo",
  "first_message": "Hello, and welcome to the VoxiHub demo.",
  "transcriber": {"provider": "pocketsphinx", "keywords": ["sales", "support"]},
  "voice": {"provider": "flite", "voice_id": "kal"},
  "interruptions": {"ignore_phrases": ["yeah", "okay", "uh huh"]},
  "end_call_phrases": [],
  "response_engine": {
    "type": "flow",
    "start": "menu",
    "nodes": [
      {"id": "menu", "type": "menu",
       "prompt": "Say sales or support, or press 1 or 2.",
       "choices": [
         {"keywords": ["sales"], "digit": "1", "next": "sales"},
         {"keywords": ["support"], "digit": "2", "next": "support"}],
       "retries": 2,
       "no_input_prompt": "I did not hear anything. Say sales or support, or press 1 or 2.",
       "no_match_prompt": "Sorry, I did not get that. Say sales or support, or press 1 or 2.",
       "timeout_ms": 6000,
       "fallback": "bye"},
      {"id": "sales", "type": "say",
       "text": "You reached sales. Thank you for your interest in VoxiHub.", "next": "bye"},
      {"id": "support", "type": "say",
       "text": "You reached support. Our team is here to help.", "next": "bye"},
      {"id": "bye", "type": "hangup", "message": "Thank you for calling. Goodbye."}
    ]
  }
}
JSON

agent_id=$(api POST /v1/agents "$AGENT" | jq -r '.id // empty')
[[ -n "$agent_id" ]] || die "could not create the demo agent"
number_id=$(api POST /v1/phone-numbers "{\"number\":\"demo\",\"agent_id\":\"$agent_id\"}" |
  jq -r '.id // empty')
[[ -n "$number_id" ]] || die "could not create the number \"demo\""
log "demo agent $agent_id answers sip:demo@127.0.0.1:$VOXI_SIP_PORT_DEFAULT (number $number_id)"
