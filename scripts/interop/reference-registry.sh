#!/usr/bin/env bash
# Starts or stops the reference registry (CNCF distribution 2.8, Debian's
# docker-registry package) on 127.0.0.1:PORT, with filesystem storage under
# DIR, htpasswd (bcrypt) basic auth and deletes enabled. It is what the
# interop suite is validated against before it is pointed at berth.
#
# Usage: scripts/interop/reference-registry.sh start DIR PORT USER PASSWORD
#        scripts/interop/reference-registry.sh stop  DIR [PORT USER PASSWORD]
set -euo pipefail

usage() {
    sed -n '7,8p' "$0" >&2
    exit 2
}

[ $# -ge 2 ] || usage
action=$1
dir=$2
pidfile=$dir/registry.pid

# Stop the registry recorded in DIR's pidfile, if it is still running.
stop_ours() {
    [ -f "$pidfile" ] || return 0
    local pid
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
}

# The package's own instance (port 5000, /var/lib/docker-registry) is not
# used; stop it so that it holds no port and no one mistakes it for ours.
stop_packaged() {
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        systemctl stop docker-registry >/dev/null 2>&1 || true
    elif [ -x /etc/init.d/docker-registry ]; then
        /etc/init.d/docker-registry stop >/dev/null 2>&1 || true
    fi
}

case $action in
    start)
        [ $# -eq 5 ] || usage
        port=$3
        user=$4
        password=$5
        command -v docker-registry >/dev/null || {
            echo "docker-registry is not installed (scripts/interop/install.sh installs it)" >&2
            exit 1
        }
        stop_packaged
        stop_ours
        mkdir -p "$dir/data"

        # distribution only accepts bcrypt entries in htpasswd files.
        if command -v htpasswd >/dev/null; then
            htpasswd -Bbn "$user" "$password" >"$dir/htpasswd"
        else
            python3 -c 'import bcrypt,sys; print(sys.argv[1] + ":" + bcrypt.hashpw(sys.argv[2].encode(), bcrypt.gensalt()).decode())' \
                "$user" "$password" >"$dir/htpasswd"
        fi
        chmod 600 "$dir/htpasswd"

        cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: 127.0.0.1:$port
  secret: $(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
auth:
  htpasswd:
    realm: interop-reference
    path: $dir/htpasswd
EOF

        # nohup: the registry must outlive this script and its terminal.
        nohup docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 </dev/null &
        echo $! >"$pidfile"

        # Ready when /v2/ answers 401 (auth required) or 200.
        for _ in $(seq 1 100); do
            code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port/v2/" || true)
            if [ "$code" = 401 ] || [ "$code" = 200 ]; then
                echo "reference registry listening on 127.0.0.1:$port (pid $(cat "$pidfile"), log $dir/registry.log)"
                exit 0
            fi
            if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
                echo "reference registry exited; last log lines:" >&2
                tail -5 "$dir/registry.log" >&2
                rm -f "$pidfile"
                exit 1
            fi
            sleep 0.1
        done
        echo "reference registry did not answer on 127.0.0.1:$port within 10s" >&2
        stop_ours
        exit 1
        ;;
    stop)
        stop_ours
        echo "reference registry stopped"
        ;;
    *)
        usage
        ;;
esac
