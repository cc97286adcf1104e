# A private Docker daemon for the interop scripts (sourced, not run): vfs storage, no
# networking, its sockets and state below one directory, so it touches nothing of the host's.
#
#   dockerd_start DIR REGISTRY LOG   starts it; exports DOCKER_HOST and DOCKER_CONFIG, sets DK
#                                    (the client to use); on failure returns 1 with DOCKERD_WHY.
#   dockerd_stop DIR                 stops it and whatever it left mounted below DIR.
# DIR must be short: the daemon's unix sockets live below it (108-byte limit).

dockerd_start() {
    local dir=$1 registry=$2 log=$3 launcher
    # Prefer Debian's client, the same version as its daemon, over any other docker in PATH.
    DK=docker
    if [ -x /usr/bin/docker ]; then DK=/usr/bin/docker; fi
    mkdir -p "$dir/root" "$dir/exec" "$dir/cfg"
    export DOCKER_HOST=unix://$dir/docker.sock DOCKER_CONFIG=$dir/cfg
    # vfs works on any backing filesystem, and speed is irrelevant here. No bridge or iptables:
    # push and pull run no container. --insecure-registry: loopback needs it not, others would.
    dockerd --iptables=false --ip6tables=false --bridge=none \
        --storage-driver "${INTEROP_DOCKER_STORAGE_DRIVER:-vfs}" \
        --data-root "$dir/root" --exec-root "$dir/exec" --host "$DOCKER_HOST" \
        --pidfile "$dir/docker.pid" --insecure-registry "$registry" \
        >"$log" 2>&1 </dev/null &
    launcher=$!
    for _ in $(seq 1 $((${T_DAEMON:-60} * 2))); do
        if timeout 5 "$DK" version >/dev/null 2>&1; then return 0; fi
        kill -0 "$launcher" 2>/dev/null || break
        sleep 0.5
    done
    DOCKERD_WHY=$(grep -iE 'level=(fatal|error)|failed' "$log" | tail -1 | cut -c1-250)
    DOCKERD_WHY=${DOCKERD_WHY:-no answer in ${T_DAEMON:-60}s}
    return 1
}

dockerd_stop() {
    local dir=$1 pid=""
    # dockerd's own pidfile names it even if the launcher pid was a wrapper.
    if [ -s "$dir/docker.pid" ]; then pid=$(cat "$dir/docker.pid"); fi
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        # dockerd stops its own containerd on the way out; give it time.
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -9 "$pid" 2>/dev/null
    fi
    # A containerd that outlived dockerd (killed hard) is found by its pidfile.
    if [ -f "$dir/exec/containerd/containerd.pid" ]; then
        kill -9 "$(cat "$dir/exec/containerd/containerd.pid")" 2>/dev/null
    fi
    # Storage drivers and dockerd may leave mounts below DIR; unmount deepest first.
    awk -v t="$dir" '$5 == t || index($5, t "/") == 1 {print $5}' /proc/self/mountinfo |
        sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
    return 0
}
