# Shared by bench/ab.sh and bench/instr.sh (sourced): waiting for a port.

wait_port() { # PORT [SECONDS, default 10]
    local tries=$((${2:-10} * 10))
    for _ in $(seq 1 "$tries"); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
