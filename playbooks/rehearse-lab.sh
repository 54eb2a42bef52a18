#!/usr/bin/env bash
# Rehearse the lab upgrade against an NSX-T Manager emulator and vCenter simulator on localhost.
#
#   playbooks/rehearse-lab.sh [--speed X] [--keep]
#
# Starts, from playbooks/lab-inventory.yaml:
#   * the NSX-T 2.x upgrade-API emulator (`nsxt-upgrade emulate nsxt --tls`) on
#     https://127.0.0.1:8443, at --speed X (default 60: a three-hour upgrade in three minutes);
#   * govmomi's vCenter simulator (tests/vcsim, built with Go on first use) on
#     https://127.0.0.1:8989/sdk, with the same clusters, DRS levels, hosts and VMs;
# and writes both CA certificates into playbooks/.nsxt-upgrade/rehearsal/ca-bundle.pem, the
# ca_bundle of playbooks/lab-real-2.1-to-2.3.yaml. Both run in the foreground until Ctrl-C.
#
# Credentials come from the environment, as for nsxt-upgrade itself: the emulator accepts
# NSXT_USERNAME/NSXT_PASSWORD, vcsim accepts VSPHERE_USERNAME/VSPHERE_PASSWORD.
#
# Every start is a fresh lab at NSX-T 2.1 unless --keep is given: then the emulator
# continues the world it kept (vcsim always starts afresh: it keeps nothing).
#
# Needs: nsxt-upgrade (or NSXT_UPGRADE="python -m upgrade" from the repository), and Go with
# Debian's golang-github-vmware-govmomi-dev (GO111MODULE=off GOPATH=/usr/share/gocode), or
# VCSIM=/path/to/an/already/built/tests/vcsim binary.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
work="$here/.nsxt-upgrade/rehearsal"
inventory="$here/lab-inventory.yaml"
speed=60
keep=0
nsx_port=8443
vc_port=8989

while (($#)); do
    case "$1" in
        --speed) speed="${2:?--speed needs a value}"; shift 2 ;;
        --keep) keep=1; shift ;;
        -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "rehearse-lab.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

for var in NSXT_USERNAME NSXT_PASSWORD VSPHERE_USERNAME VSPHERE_PASSWORD; do
    if [[ -z "${!var:-}" ]]; then
        echo "rehearse-lab.sh: set $var in the environment (NSXT_USERNAME/NSXT_PASSWORD for" \
             "the emulator, VSPHERE_USERNAME/VSPHERE_PASSWORD for vcsim)" >&2
        exit 2
    fi
done

cd "$root"
read -r -a nsxt_upgrade <<<"${NSXT_UPGRADE:-nsxt-upgrade}"
mkdir -p "$work"
if ((keep == 0)); then
    rm -rf "$work/emulator" "$work/run"
fi

# vcsim: build once (cached next to the rehearsal's state), unless VCSIM names a binary
vcsim="${VCSIM:-}"
if [[ -z "$vcsim" ]]; then
    vcsim="$work/vcsim"
    if [[ ! -x "$vcsim" || "$root/tests/vcsim/main.go" -nt "$vcsim" ]]; then
        command -v go >/dev/null || {
            echo "rehearse-lab.sh: go is not installed (apt-get install golang-go" \
                 "golang-github-vmware-govmomi-dev), or set VCSIM to a built binary" >&2
            exit 2
        }
        echo "building vcsim from tests/vcsim ..."
        (cd "$root/tests/vcsim" && GO111MODULE=off GOPATH="${VCSIM_GOPATH:-/usr/share/gocode}" \
            GOFLAGS= CGO_ENABLED=0 go build -o "$vcsim" .)
    fi
fi

pids=()
cleanup() {
    trap - EXIT INT TERM
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 0' INT TERM

# wait_line FILE PATTERN WHAT PID: until FILE has a line matching PATTERN (or PID died)
wait_line() {
    for _ in $(seq 1 300); do
        if grep -q -- "$2" "$1" 2>/dev/null; then
            return 0
        fi
        if ! kill -0 "$4" 2>/dev/null; then
            echo "rehearse-lab.sh: $3 did not start:" >&2
            cat "$1" "$1.err" >&2 2>/dev/null || true
            exit 1
        fi
        sleep 0.1
    done
    echo "rehearse-lab.sh: $3 did not start within 30 s (see $1.err)" >&2
    exit 1
}

"${nsxt_upgrade[@]}" emulate vcsim-spec --inventory "$inventory" >"$work/vcsim-spec.json"
rm -f "$work/vcsim-ca.pem"
"$vcsim" -port "$vc_port" -username "$VSPHERE_USERNAME" -password "$VSPHERE_PASSWORD" \
    -spec "$work/vcsim-spec.json" -cert-out "$work/vcsim-ca.pem" \
    >"$work/vcsim.out" 2>"$work/vcsim.out.err" &
pids+=($!)
wait_line "$work/vcsim.out" "^https://" "vcsim on port $vc_port" "${pids[-1]}"

"${nsxt_upgrade[@]}" emulate nsxt --inventory "$inventory" --state-dir "$work/emulator" \
    --port "$nsx_port" --tls --speed "$speed" >"$work/emulator.out" 2>"$work/emulator.out.err" &
pids+=($!)
wait_line "$work/emulator.out" "^listening on " "the NSX-T emulator on port $nsx_port" "${pids[-1]}"

# one bundle, two CAs: Python's ssl (httpx, pyVmomi) loads every certificate in the file
cat "$work/emulator/emulator-cert.pem" "$work/vcsim-ca.pem" >"$work/ca-bundle.pem.tmp"
mv "$work/ca-bundle.pem.tmp" "$work/ca-bundle.pem"

cat <<EOF
NSX-T Manager emulator: https://127.0.0.1:$nsx_port  (speed $speed; log $work/emulator.out.err)
vCenter simulator:      https://127.0.0.1:$vc_port/sdk  (log $work/vcsim.out.err)
CA bundle:              $work/ca-bundle.pem

In another terminal, with the same NSXT_* and VSPHERE_* variables:
  nsxt-upgrade plan $here/lab-real-2.1-to-2.3.yaml
  nsxt-upgrade run $here/lab-real-2.1-to-2.3.yaml --clock real --speed $speed --state-dir $work/run
  nsxt-upgrade sim show --state-dir $work/emulator      # the emulator's world, upgrade counts
Ctrl-C here stops both.
EOF
wait -n "${pids[@]}" || true
echo "rehearse-lab.sh: a simulator stopped; stopping the other" >&2
