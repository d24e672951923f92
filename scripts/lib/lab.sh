# shellcheck shell=bash
# Shared by scripts/lab (the reference scenario in network namespaces) and
# scripts/clab/netns-deploy (the containerlab topology of the same scenario,
# deployed in namespaces): polling, hotcastctl JSON queries, the scenario's
# conditions, stopping what a run started, the phase marks and the report.
#
# The sourcing script sets
#   PROG       its name, for messages
#   RUN        its run directory: NAME.pid and NAME.log of what it started
#   ROUTERS    (Master Backup): the reference's DeviceA and DeviceB
#   MARKS      the file the sender appends its marks to (mcast.py --marks)
#   PHASES     the phase boundaries the receivers and the report read
#   RECEIVERS  names of the receivers' NAME.log files, for the report
#   PPS, MCAST the streams' rate and scripts/lib/mcast.py
#   SCENARIO_GROUPS  the groups the receivers join (ff0e::1:1 ff0e::1:2 ff3e::1:3)
# and defines
#   ctl DEV ARGS...   hotcastctl ARGS on router DEV
#   ctl_hint DEV      how a user runs hotcastctl on DEV (for trimmed output)
#   owned NAME PID    PID is the process NAME of this run (pids get reused)
# and optionally
#   phases_published  called once the phases are complete, before the
#                     receivers stop (they read PHASES when they stop)

say() { printf '\n== %s\n' "$*"; }
# jget DEV EXPR ARGS...: evaluate a Python expression over d, the JSON of
# "hotcastctl display ARGS --json" on DEV. Empty output on any error.
jget() {
  local dev=$1 expr=$2; shift 2
  ctl "$dev" "$@" --json 2>/dev/null |
    /usr/bin/python3 -c 'import json, sys
try:
    d = json.load(sys.stdin); print(eval(sys.argv[1]))
except Exception:
    pass' "$expr" 2>/dev/null || true
}
vrrp_state() { jget "$1" 'd[0]["state"]' display vrrp6; }
# wait_for SECONDS WHAT COMMAND...: poll COMMAND every 100 ms.
wait_for() {
  local secs=$1 what=$2; shift 2
  local end=$((SECONDS + secs))
  until "$@"; do
    if [ "$SECONDS" -ge "$end" ]; then
      echo "$PROG: timed out after ${secs}s waiting for $what" >&2
      return 1
    fi
    sleep 0.1
  done
}
# display DEV ARGS...: hotcastctl display, VRP prompt style, trimmed.
display() {
  local dev=$1; shift
  local out
  printf '\n<%s> display %s\n' "$dev" "$*"
  out=$(ctl "$dev" display "$@" 2>&1) || true
  # Here-strings, not pipes: under pipefail a printf that head has
  # stopped reading from dies of SIGPIPE and takes the script with it.
  if [ "$(wc -l <<<"$out")" -gt 30 ]; then
    head -n 30 <<<"$out"
    echo "  ... (trimmed; full: $(ctl_hint "$dev") display $*)"
  else
    printf '%s\n' "$out"
  fi
}

# alive NAME: the process of $RUN/NAME.pid runs, and is ours.
alive() {
  local pid
  pid=$(cat "$RUN/$1.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && owned "$1" "$pid"
}
# stop NAME [SECONDS]: SIGTERM, wait, SIGKILL. The pid goes to STOPPED
# for reaped.
STOPPED=()
stop() {
  local name=$1 secs=${2:-5} pid i
  alive "$name" || { rm -f "$RUN/$name.pid"; return 0; }
  pid=$(cat "$RUN/$name.pid")
  STOPPED+=("$pid")
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < secs * 10; i++)); do
    alive "$name" || break
    sleep 0.1
  done
  if alive "$name"; then kill -KILL "$pid" 2>/dev/null; fi
  rm -f "$RUN/$name.pid"
}
# reaped: wait (up to 5 s) until the processes stopped are gone from the
# process table. A daemon left running by an earlier `up` belongs to init
# by now, which reaps its zombies only every few seconds; pgrep would
# still list them.
reaped() {
  local pid i
  for ((i = 0; i < 50; i++)); do
    # shellcheck disable=SC2031
    for pid in "${STOPPED[@]}"; do
      if [ -e "/proc/$pid" ]; then sleep 0.1; continue 2; fi
    done
    return 0
  done
}

# The scenario's conditions. ROUTERS[0] is the reference's DeviceA (Master,
# priority 200), ROUTERS[1] its DeviceB (Backup, 120).
# routes_learned DEV FLAG: a route with FLAG (learned|synced) for each of the
# scenario's three groups. Only those: a router with kernel forwarding on
# (start-hotcastd's) also reports ff05::2, all-routers site-local, on the
# LAN, and the querier rightly learns it.
routes_learned() {
  [ "$(jget "$1" "len([r for r in d['routes'] if r['group'] in '${SCENARIO_GROUPS[*]}'.split() and ('$2' in (r['flags'] or []) or ('$2' == 'learned' and not r['flags']))])" display multicast forwarding-table)" = "${#SCENARIO_GROUPS[@]}" ]
}
roles() { [ "$(vrrp_state "${ROUTERS[0]}")" = "$1" ] && [ "$(vrrp_state "${ROUTERS[1]}")" = "$2" ]; }
profile_up() {
  [ "$(jget "${ROUTERS[0]}" 'd[0]["state"]+"/"+d[0]["peer_state"]' display remote-backup-profile)" = Master/Backup ] &&
    [ "$(jget "${ROUTERS[1]}" 'd[0]["tcp_state"]' display remote-backup-service)" = connected ]
}
api_up() { ctl "$1" display vrrp6 >/dev/null 2>&1; }
ready() { grep -q '^ready' "$RUN/$1.log" 2>/dev/null; }
state_is() { [ "$(vrrp_state "$1")" = "$2" ]; }
a_hears_b() { [ "$(jget "${ROUTERS[0]}" 'd[0]["master_priority"]' display vrrp6)" = 120 ]; }

marked() { [ "$(wc -l <"$MARKS")" -gt "$1" ]; }
# mark NAME: a phase boundary: the sender ($RUN/send.pid) records its next
# sequence number.
mark() {
  local n
  alive send || return 0
  n=$(wc -l <"$MARKS")
  kill -USR1 "$(cat "$RUN/send.pid")"
  wait_for 3 "the sender's mark" marked "$n"
  tail -n 1 "$MARKS" | awk -v name="$1" '{print name, $2, $3, $4}' >>"$PHASES"
}

# finish: stop the streams and write the receivers' summaries.
finish() {
  local r
  alive send || return 0
  stop send 3
  grep '^end ' "$MARKS" >>"$PHASES" || true
  if declare -F phases_published >/dev/null; then phases_published; fi
  sleep 0.3
  for r in "${RECEIVERS[@]}"; do stop "$r" 5; done
}

# report [--check]: the summary table (phases warmup..end), with the
# theoretical Master_Down_Interval of the Backup ($RUN/mdi).
report() {
  local mdi args=() logs=() r
  mdi=$(cat "$RUN/mdi" 2>/dev/null || true)
  say "summary ($PPS pps per group; gaps from kernel receive timestamps)"
  if [ -n "$mdi" ]; then
    printf 'Master_Down_Interval of %s (display vrrp6 --json: master_down_interval): %.0f ms\n' \
      "${ROUTERS[1]}" "$(awk -v m="$mdi" 'BEGIN{print m*1000}')"
    args=(--max-gap-ms "$(awk -v m="$mdi" 'BEGIN{printf "%.1f", m*1000+100}')")
  fi
  # With BFD tracked by the group (scripts/lab HC_LAB_BFD) the takeover is
  # bounded by the session's detection time.
  local detect
  detect=$(cat "$RUN/detect" 2>/dev/null || true)
  if [ -n "$detect" ]; then
    printf "BFD detection time of %s's LAN session (display bfd session --json: detect_time): %.1f ms\n" \
      "${ROUTERS[1]}" "$(awk -v m="$detect" 'BEGIN{print m*1000}')"
    args=(--max-gap-ms "$(awk -v m="$detect" 'BEGIN{printf "%.1f", m*1000+100}')")
  fi
  if [ "${1:-}" = --check ]; then args+=(--check "steady,failover,failback"); fi
  for r in "${RECEIVERS[@]}"; do logs+=("$RUN/$r.log"); done
  echo "the receivers' machine-readable lines:"
  grep -h '^summary ' "${logs[@]}" || true
  echo
  /usr/bin/python3 "$MCAST" report --phases "$PHASES" "${args[@]}" "${logs[@]}"
}

# guarded CLEANUP COMMAND...: run COMMAND in a background subshell and wait
# for it. Ctrl-C or SIGTERM ends it and runs CLEANUP (down, or nothing).
# Waiting in the wait builtin makes the trap run at once: a foreground
# child that catches SIGINT itself (python, a Go tool) would otherwise make
# bash carry on as if nothing happened. The subshell ignores SIGINT (an
# asynchronous command does, without job control), so only this shell
# decides.
guarded() {
  local cleanup=$1 rc=0
  shift
  "$@" &
  BODY=$!
  trap 'set +e; trap - INT TERM; echo "$PROG: interrupted, cleaning up" >&2; kill -TERM "$BODY" 2>/dev/null; wait "$BODY" 2>/dev/null; '"$cleanup"'; exit 130' INT TERM
  wait "$BODY" || rc=$?
  trap - INT TERM
  return "$rc"
}
