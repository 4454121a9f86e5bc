#!/usr/bin/env bash
# Checks deploy/ without Docker or a Kubernetes cluster:
#   - every YAML file under deploy/ parses (every document);
#   - the compose file has nats, postgres, migrate and the six services, each service with
#     a /readyz healthcheck, every depends_on target defined;
#   - every Kubernetes Deployment's containers have readiness and liveness probes, resource
#     requests and limits, and a termination grace period; each of the six services has a
#     Deployment; a Job runs `voxi-registry migrate`; every ConfigMap/Secret referenced
#     exists (with the key referenced);
#   - every VOXI_* variable the deploy files set is one the service it is set for knows
#     (from `voxi-<svc> --config-reference`; skipped, with a message, when not built);
#   - deploy/nats/nats.conf passes `nats-server -t`; the Dockerfile's COPY sources exist.
#
# Usage: scripts/validate-deploy.sh [-v] [BUILD_DIR]   (default: build; -v lists every check)
# Needs /usr/bin/python3 with python3-yaml (Debian package, installed by make deps).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
VERBOSE=0
if [[ "${1:-}" == -v ]]; then
  VERBOSE=1
  shift
fi
BUILD_DIR=${1:-build}
PY=/usr/bin/python3
SERVICES=(gateway auth registry webhooks media providers)

[[ -x "$PY" ]] || {
  echo "validate-deploy: error: $PY not found" >&2
  exit 1
}
"$PY" -c 'import yaml' 2>/dev/null || {
  echo "validate-deploy: error: python3-yaml missing (make deps, or apt-get install python3-yaml)" >&2
  exit 1
}

TMP=$(mktemp -d)
trap 'rm -rf -- "$TMP"' EXIT

# Config references of the built services: $TMP/ref/<svc>.md, or a note why not.
mkdir -p "$TMP/ref"
for svc in "${SERVICES[@]}"; do
  bin="$REPO/$BUILD_DIR/bin/voxi-$svc"
  if [[ ! -x "$bin" ]]; then
    echo "$BUILD_DIR/bin/voxi-$svc not built" >"$TMP/ref/$svc.missing"
  elif ! timeout 10 "$bin" --config-reference >"$TMP/ref/$svc.md" 2>"$TMP/ref/$svc.err"; then
    echo "$BUILD_DIR/bin/voxi-$svc --config-reference failed: $(head -c 300 "$TMP/ref/$svc.err")" \
      >"$TMP/ref/$svc.failed"
    rm -f -- "$TMP/ref/$svc.md"
  fi
done

# nats.conf syntax, by the server itself.
nats_result="skip: /usr/sbin/nats-server not installed"
if [[ -x /usr/sbin/nats-server ]]; then
  if out=$(/usr/sbin/nats-server -c "$REPO/deploy/nats/nats.conf" -sd "$TMP/js" -t 2>&1); then
    nats_result="ok"
  else
    nats_result="fail: $out"
  fi
fi

rc=0
"$PY" - "$REPO" "$TMP/ref" "$nats_result" "$VERBOSE" <<'PYEOF' || rc=$?
import glob
import os
import re
import sys

import yaml

repo, refdir, nats_result = sys.argv[1], sys.argv[2], sys.argv[3]
verbose = sys.argv[4] == "1"
deploy = os.path.join(repo, "deploy")
SERVICES = ["gateway", "auth", "registry", "webhooks", "media", "providers"]
passed = failed = 0


def rel(path):
    return os.path.relpath(path, repo)


def check(ok, what, detail=""):
    global passed, failed
    if ok:
        passed += 1
        if verbose:
            print(f"  ok    {what}")
    else:
        failed += 1
        print(f"  FAIL  {what}" + (f": {detail}" if detail else ""))
    return ok


def skip(what, why):
    print(f"  skip  {what}: {why}")


# ---- 1. every YAML file parses ----
print("YAML")
docs_by_file = {}
yaml_files = sorted(
    p for p in glob.glob(os.path.join(deploy, "**", "*"), recursive=True)
    if p.endswith((".yml", ".yaml")) and os.path.isfile(p)
)
check(len(yaml_files) > 0, "YAML files found under deploy/", "none")
for path in yaml_files:
    try:
        with open(path, encoding="utf-8") as f:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
        docs_by_file[path] = docs
        check(True, f"{rel(path)} parses ({len(docs)} document(s))")
    except yaml.YAMLError as e:
        check(False, f"{rel(path)} parses", str(e).replace("\n", " "))

# ---- known variables per service ----
known = {}
for svc in SERVICES:
    md = os.path.join(refdir, svc + ".md")
    if os.path.exists(md):
        names = set()
        with open(md, encoding="utf-8") as f:
            for line in f:
                m = re.match(r"^\|\s*`(VOXI_[A-Z0-9_]+)`\s*\|", line)
                if m:
                    names.add(m.group(1))
        known[svc] = names
why_unknown = {}
for svc in SERVICES:
    if svc not in known:
        for ext in (".missing", ".failed"):
            p = os.path.join(refdir, svc + ext)
            if os.path.exists(p):
                why_unknown[svc] = open(p, encoding="utf-8").read().strip()
known_any = set().union(*known.values()) if known else set()

# (where, service or None, variable) for every VOXI_* variable set in a deploy file
var_uses = []


def svc_of(command, name):
    """The VoxiHub service a container/compose service runs: its command, else its name."""
    if isinstance(command, str):
        command = command.split()
    if isinstance(command, list) and command:
        m = re.match(r"^(?:.*/)?voxi-([a-z]+)$", str(command[0]))
        if m and m.group(1) in SERVICES:
            return m.group(1)
    return name if name in SERVICES else None


def env_names(environment):
    if isinstance(environment, dict):
        return [str(k) for k in environment]
    if isinstance(environment, list):
        return [str(e).split("=", 1)[0] for e in environment]
    return []


# ---- 2. compose ----
print("compose")
compose_files = [p for p, d in docs_by_file.items()
                 if "/compose/" in p and d and isinstance(d[0], dict) and "services" in d[0]]
check(len(compose_files) > 0, "a compose file under deploy/compose/", "none found")
for path in compose_files:
    services = docs_by_file[path][0].get("services") or {}
    name = rel(path)
    for want in ["nats", "postgres", "migrate"] + SERVICES:
        check(want in services, f"{name}: service {want}")
    for svc in SERVICES:
        spec = services.get(svc) or {}
        test = (spec.get("healthcheck") or {}).get("test")
        text = " ".join(test) if isinstance(test, list) else str(test or "")
        check("/readyz" in text, f"{name}: {svc} healthcheck probes /readyz", f"test is {test!r}")
        env = spec.get("environment") or {}
        addr = env.get("VOXI_HEALTH_ADDR") if isinstance(env, dict) else None
        check(addr == "0.0.0.0", f"{name}: {svc} sets VOXI_HEALTH_ADDR=0.0.0.0", f"got {addr!r}")
    mig = services.get("migrate") or {}
    mcmd = mig.get("command")
    mtext = " ".join(mcmd) if isinstance(mcmd, list) else str(mcmd or "")
    check(re.search(r"voxi-registry\s+migrate", mtext) is not None,
          f"{name}: migrate runs `voxi-registry migrate`", f"command is {mcmd!r}")
    for sname, spec in services.items():
        deps = (spec or {}).get("depends_on") or []
        deps = list(deps) if isinstance(deps, (dict, list)) else []
        missing = [d for d in deps if d not in services]
        if deps:
            check(not missing, f"{name}: {sname} depends_on defined services", f"unknown {missing}")
        for var in env_names((spec or {}).get("environment")):
            if var.startswith("VOXI_"):
                var_uses.append((f"{name}: service {sname}", svc_of(spec.get("command"), sname), var))

# ---- 3. Kubernetes ----
print("kubernetes")
k8s_docs = [(p, d) for p, docs in docs_by_file.items() if "/k8s/" in p
            for d in docs if isinstance(d, dict)]
check(len(k8s_docs) > 0, "Kubernetes manifests under deploy/k8s/", "none found")
configmaps = {}
secrets = {}
for path, d in k8s_docs:
    kind = d.get("kind")
    meta = d.get("metadata") or {}
    if kind == "ConfigMap":
        configmaps[meta.get("name")] = set((d.get("data") or {}).keys())
    elif kind == "Secret":
        secrets[meta.get("name")] = set((d.get("stringData") or {}).keys()) | set((d.get("data") or {}).keys())

deployments = {}
migrate_job = False
for path, d in k8s_docs:
    kind = d.get("kind")
    if kind not in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        continue
    name = (d.get("metadata") or {}).get("name")
    where = f"{rel(path)}: {kind} {name}"
    pod = ((d.get("spec") or {}).get("template") or {}).get("spec") or {}
    containers = pod.get("containers") or []
    check(len(containers) > 0, f"{where} has containers")
    if kind == "Deployment":
        check("terminationGracePeriodSeconds" in pod, f"{where} sets terminationGracePeriodSeconds")
    for c in containers:
        cname = c.get("name")
        svc = svc_of(c.get("command"), cname)
        if kind == "Deployment":
            if svc:
                deployments[svc] = where
            for probe in ("readinessProbe", "livenessProbe"):
                check(probe in c, f"{where}/{cname} has a {probe}")
            res = c.get("resources") or {}
            check("requests" in res and "limits" in res,
                  f"{where}/{cname} has resource requests and limits")
        if kind == "Job":
            cmd = c.get("command") or []
            if isinstance(cmd, list) and cmd[:2] == ["voxi-registry", "migrate"]:
                migrate_job = True
        for e in c.get("env") or []:
            if str(e.get("name", "")).startswith("VOXI_"):
                var_uses.append((f"{where}/{cname}", svc, e["name"]))
            ref = ((e.get("valueFrom") or {}).get("secretKeyRef")) or {}
            if ref:
                check(ref.get("key") in secrets.get(ref.get("name"), set()),
                      f"{where}/{cname}: Secret {ref.get('name')} has key {ref.get('key')}")
            ref = ((e.get("valueFrom") or {}).get("configMapKeyRef")) or {}
            if ref:
                check(ref.get("key") in configmaps.get(ref.get("name"), set()),
                      f"{where}/{cname}: ConfigMap {ref.get('name')} has key {ref.get('key')}")
        for ef in c.get("envFrom") or []:
            for refkind, table in (("configMapRef", configmaps), ("secretRef", secrets)):
                ref = ef.get(refkind)
                if not ref:
                    continue
                rname = ref.get("name")
                if check(rname in table, f"{where}/{cname}: {refkind} {rname} exists"):
                    for var in sorted(table[rname]):
                        if var.startswith("VOXI_"):
                            var_uses.append((f"{where}/{cname} (envFrom {rname})", svc, var))
for svc in SERVICES:
    check(svc in deployments, f"a Deployment runs voxi-{svc}")
check(migrate_job, "a Job runs `voxi-registry migrate`")

# ---- 4. VOXI_* variables ----
print("variables")
df = os.path.join(deploy, "Dockerfile")
if os.path.exists(df):
    for line in open(df, encoding="utf-8"):
        m = re.match(r"^\s*ENV\s+(.*)$", line)
        if m:
            for var in re.findall(r"\b(VOXI_[A-Z0-9_]+)(?==|\s)", m.group(1)):
                var_uses.append(("deploy/Dockerfile ENV", None, var))
if not known:
    skip("VOXI_* variables are known to the services",
         "no service binary built yet (" + "; ".join(why_unknown.values()) + ")")
else:
    for svc, why in sorted(why_unknown.items()):
        skip(f"variables set for {svc}", why)
    seen = set()
    for where, svc, var in var_uses:
        if (where, var) in seen:
            continue
        seen.add((where, var))
        if svc is not None:
            if svc in known:
                check(var in known[svc], f"{where}: {var} is known to voxi-{svc}",
                      f"not in voxi-{svc} --config-reference")
        else:
            check(var in known_any, f"{where}: {var} is known to a service",
                  "in no service's --config-reference")

# ---- 5. nats.conf and Dockerfile ----
print("other")
if nats_result.startswith("skip"):
    skip("deploy/nats/nats.conf", nats_result[6:])
else:
    check(nats_result == "ok", "deploy/nats/nats.conf passes nats-server -t", nats_result[6:])
if check(os.path.exists(df), "deploy/Dockerfile exists"):
    text = open(df, encoding="utf-8").read().replace("\\\n", " ")
    stages = re.findall(r"^FROM\s+\S+(?:\s+AS\s+(\S+))?", text, re.M | re.I)
    check(len(stages) >= 2, "deploy/Dockerfile is multi-stage", f"{len(stages)} FROM")
    for m in re.finditer(r"^COPY\s+(?!--from)(.*)$", text, re.M):
        args = [a for a in m.group(1).split() if not a.startswith("--")]
        for src in args[:-1]:
            check(src == "." or os.path.exists(os.path.join(repo, src)),
                  f"deploy/Dockerfile: COPY source {src} exists")

if not verbose:
    print("(scripts/validate-deploy.sh -v lists every check)")
print(f"validate-deploy: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PYEOF
exit "$rc"
