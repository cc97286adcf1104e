# A berth of an interop suite's own (sourced, not run).
#
#   berth_start BERTH DATA ACCOUNT LOG   serves DATA on a free loopback port with ACCOUNT as its
#                                        owner; sets pid, registry (host:port), key and secret
#                                        (the owner's root key), and waits until it is healthy.
#   berth_admin ARGS...                  `berth admin ARGS` on that data directory.
# shellcheck shell=bash

berth_start() {
    BERTH_BIN=$1 BERTH_DATA=$2 BERTH_OWNER=$3
    local port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    registry=127.0.0.1:$port
    BERTH_BOOTSTRAP_ACCOUNT_ID=$BERTH_OWNER "$BERTH_BIN" serve --data-dir "$BERTH_DATA" --listen "$registry" >"$4" 2>&1 &
    pid=$!
    for _ in $(seq 300); do
        curl -fs "http://$registry/healthz" >/dev/null 2>&1 && break
        sleep 0.1
    done
    key=$(awk -F' = ' '/aws_access_key_id/ {print $2}' "$BERTH_DATA/bootstrap-credentials")
    secret=$(awk -F' = ' '/aws_secret_access_key/ {print $2}' "$BERTH_DATA/bootstrap-credentials")
}

berth_admin() {
    BERTH_BOOTSTRAP_ACCOUNT_ID=$BERTH_OWNER "$BERTH_BIN" admin "$@" --data-dir "$BERTH_DATA"
}
