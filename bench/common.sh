# Shared by the bench/ scripts (sourced): waiting for a port, the median of
# a list.

wait_port() { # PORT [SECONDS, default 10]
    local tries=$((${2:-10} * 10))
    for _ in $(seq 1 "$tries"); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# The median of numbers separated by spaces on standard input.
median() { tr ' ' '\n' | sed '/^$/d' | sort -n | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
