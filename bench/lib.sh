# Helpers shared by bench/run.sh and bench/s3.sh: timing with a hang watchdog, medians, ratios.
# The caller sets TMP (scratch directory), STALL and TIMEOUT (seconds) before using run_timed,
# and LOG_TAG (default "run") for log lines.

log() { printf '[%s %(%H:%M:%S)T] %s\n' "${LOG_TAG:-run}" -1 "$*" >&2; }
FAILED=()
fail() { echo "!!!!!!!! CHECK FAILED: $*" >&2; FAILED+=("$*"); }

# run_timed KEY CMD...: time one run, append wall (s) and peak RSS (KiB) to $TMP/KEY.{wall,rss}.
# The caller's redirections apply to CMD (e.g. > /dev/null). A watchdog kills CMD when it makes
# no CPU progress for $STALL s (a hang) or runs longer than $TIMEOUT s; the measurement is then
# marked failed, later runs of it are skipped, and the script exits 1 at the end.
hwm() { for p in "$@"; do awk '/^VmHWM/ {printf "%.0f MiB", $2/1024}' "/proc/$p/status" 2>/dev/null; done; }
watchdog() { # PID of /usr/bin/time
    local tpid=$1 last=-1 still=0 t0=$SECONDS cpu kids
    while kill -0 "$tpid" 2>/dev/null; do
        sleep 5
        kids=$(pgrep -P "$tpid" || true)
        [ -n "$kids" ] || continue
        cpu=$(for p in $kids; do awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null; done | awk '{s += $1} END{print s + 0}')
        if [ "$cpu" = "$last" ]; then still=$((still + 5)); else still=0; last=$cpu; fi
        if [ $still -ge "$STALL" ]; then echo "hung: no CPU progress for ${STALL} s after $((SECONDS - t0 - still)) s, peak RSS then $(hwm $kids)" > "$TMP/killed"; kill -KILL $kids 2>/dev/null || true; return 0; fi
        if [ $((SECONDS - t0)) -ge "$TIMEOUT" ]; then echo "timed out after ${TIMEOUT} s, peak RSS then $(hwm $kids)" > "$TMP/killed"; kill -KILL $kids 2>/dev/null || true; return 0; fi
    done
}
run_timed() {
    local key=$1; shift
    [ ! -e "$TMP/$key.failed" ] || return 0
    rm -f "$TMP/killed"
    local t0=$EPOCHREALTIME
    /usr/bin/time -f '%e %M' -o "$TMP/time.out" "$@" &
    local tpid=$! status=0
    watchdog "$tpid" &
    local wpid=$!
    wait "$tpid" || status=$?
    local t1=$EPOCHREALTIME
    kill "$wpid" 2>/dev/null || true
    wait "$wpid" 2>/dev/null || true
    if [ $status -ne 0 ]; then
        local why="exit status $status"
        [ ! -e "$TMP/killed" ] || why=$(cat "$TMP/killed")
        echo "$why" > "$TMP/$key.failed"
        fail "$key: '$*' $why"
        return 0
    fi
    local w m
    read -r w m < <(tail -n1 "$TMP/time.out")
    # wall from bash's microsecond clock (time's %e has 10 ms resolution; queries take ~10 ms)
    awk -v a="$t0" -v b="$t1" 'BEGIN{ printf "%.4f\n", b - a }' >> "$TMP/$key.wall"
    echo "$m" >> "$TMP/$key.rss"
}
ok() { [ ! -e "$TMP/$1.failed" ] && [ -s "$TMP/$1.wall" ]; }
median_of() { sort -g "$1" | awk '{a[NR]=$1} END{ if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }
wall() { if ok "$1"; then median_of "$TMP/$1.wall" | awk '{printf "%.2f", $1}'; else echo "n/a"; fi; }
wall_raw() { if ok "$1"; then median_of "$TMP/$1.wall"; else echo "n/a"; fi; }
rss_mb() { if ok "$1"; then sort -g "$TMP/$1.rss" | tail -n1 | awk '{printf "%.0f", $1/1024}'; else echo "n/a"; fi; }
failed_note() { [ ! -e "$TMP/$1.failed" ] || echo " **FAILED: $(cat "$TMP/$1.failed")**"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a == "n/a" || b == "n/a" || b == 0) print "n/a"; else printf "%.2f", a/b }'; }
verdict() { # value op target -> yes/NO
    awk -v v="$1" -v t="$3" -v op="$2" 'BEGIN{ if (v == "n/a") {print "n/a"; exit}
        ok = (op == "<=") ? (v <= t) : (v >= t); print ok ? "yes" : "**NO**" }'
}
ratio3() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a == "n/a" || b == "n/a" || b == 0) print "n/a"; else printf "%.3f", a/b }'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN{ if (s == "n/a" || s == 0) print "n/a"; else printf "%.0fk", n/s/1000 }'; }
mib_to_mb() { awk -v m="$1" 'BEGIN{ if (m == "n/a" || m == "") print "n/a"; else print m * 1.048576 }'; }
to_bytes() { numfmt --from=iec "$1"; }
mb() { awk -v b="$1" 'BEGIN{ if (b == "n/a") print "n/a"; else printf "%.1f MB", b/1e6 }'; }

# sum_region_medians PREFIX: the median wall times of PREFIX_0 .. PREFIX_n (one per element of
# the caller's REGIONS), summed; n/a when one of them failed.
sum_region_medians() { # prefix
    local k tot=0
    for k in "${!REGIONS[@]}"; do ok "$1_$k" || { echo n/a; return; }; tot=$(awk -v a="$tot" -v b="$(wall_raw "$1_$k")" 'BEGIN{print a+b}'); done
    printf '%.3f' "$tot"
}

# checks_line TEXT: the table's last line: TEXT when every output check passed, else the failures.
checks_line() {
    if [ ${#FAILED[@]} -eq 0 ]; then
        echo "Output checks: all passed ($1)."
    else
        echo "**Output checks FAILED:**"
        printf -- '- %s\n' "${FAILED[@]}"
    fi
}
# print_table_and_exit FUNCTION: prints what FUNCTION prints (also into $BENCH_OUT when set),
# then exits 1 when an output check failed.
print_table_and_exit() {
    local out
    out=$("$1")
    echo "$out"
    [ -z "${BENCH_OUT:-}" ] || echo "$out" > "$BENCH_OUT"
    log "total $((SECONDS - start_all)) s"
    [ ${#FAILED[@]} -eq 0 ] || exit 1
    exit 0
}
