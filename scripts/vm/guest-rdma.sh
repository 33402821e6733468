# guest-rdma.sh — sequence R of scripts/vm.sh: RDMA registrations over a sealed
# sealfs window, on Soft-RoCE (rdma_rxe over a dummy interface, loopback) and the
# emulated NVDIMM's /dev/dax0.0. Sourced by guest-test.sh (its pass/fail/skip/info,
# expect_good, sfs, do_mount, do_umount_fsck); the agent is /bin/rdma-agent
# (scripts/vm/rdma-agent.c).
#   boot 1  devdax namespace (--align=2M), mkfs, mount (break_timeout=1000), rxe0;
#           the agent's registration under a temporary seal (RDMA WRITE/READ, read(2),
#           ETXTBSY, SIGKILL, revocation by root and quarantine), under a breakable
#           seal (recall answered; recall ignored: revoked, quarantined), a forking
#           server, on-demand paging; a file written by RDMA and torn down cleanly
#   boot 2  mount: that file's bytes after the reboot; fsck
#   boot 3  (a newer kernel whose rxe has on-demand paging, when vm.sh has one) an ODP
#           registration of the window: recall by unmapping, the next access faults,
#           mapped again the same registration reaches the file

R_SLOT=2097152 # the mapping unit of a 2 MiB-aligned device-DAX device
R_NET=10.11.12.1

# wait_file PATH SECONDS: 0 once PATH exists
wait_file() {
	_i=0
	while [ ! -e "$1" ] && [ $_i -lt $(($2 * 10)) ]; do
		sleep 0.1
		_i=$((_i + 1))
	done
	[ -e "$1" ]
}

# stat_field NAME: one counter from `rdma-agent stat` (SEALFS_IOC_STAT)
stat_field() { rdma-agent stat $MNT | tr ' ' '\n' | sed -n "s/^$1=//p"; }

# wait_stat NAME VALUE SECONDS: 0 once the counter has that value (releases at close
# are asynchronous: FUSE RELEASE comes after close(2) returns)
wait_stat() {
	_i=0
	while [ "$(stat_field "$1")" != "$2" ] && [ $_i -lt $(($3 * 10)) ]; do
		sleep 0.1
		_i=$((_i + 1))
	done
	[ "$(stat_field "$1")" = "$2" ]
}

# expect_stat NAME FIELDS WANT: `rdma-agent stat` cut to FIELDS (cut -f) is exactly WANT
expect_stat() {
	_got=$(rdma-agent stat $MNT | cut -d' ' -f"$2")
	if [ "$_got" = "$3" ]; then
		pass "$1 ($3)"
	else
		fail "$1" "wanted $3, got: $(rdma-agent stat $MNT)"
	fi
}

# expect_try NAME WANT OP ARGS...: `rdma-agent try OP ARGS` answers WANT (an errno name or ok)
expect_try() {
	_name=$1 _want=$2
	shift 2
	_got=$(rdma-agent try "$@" 2>&1)
	set -- $_got
	if [ "${1:-}" = "$_want" ]; then
		pass "$_name: $_want (${2:-?} ms)"
		return 0
	fi
	fail "$_name" "wanted $_want, got: $_got"
	return 1
}

# start_agent CTL ARGS...: runs `rdma-agent serve ARGS` in the background with its
# log in CTL.log, waits for CTL/ready; sets AGENT_PID
start_agent() {
	_ctl=$1
	shift
	rm -rf "$_ctl" "$_ctl.log"
	mkdir -p "$_ctl"
	rdma-agent serve "$@" "$_ctl" >"$_ctl.log" 2>&1 &
	AGENT_PID=$!
	_i=0
	while [ ! -e "$_ctl/ready" ] && [ $_i -lt 1200 ] && kill -0 $AGENT_PID 2>/dev/null; do
		sleep 0.1
		_i=$((_i + 1))
	done
	[ -e "$_ctl/ready" ] && return 0
	kill -9 $AGENT_PID 2>/dev/null
	wait $AGENT_PID 2>/dev/null
	cp "$_ctl.log" "$OUT"
	return 1
}

rdma_setup() {
	if [ ! -s /etc/modules-rdma ]; then
		skip "RDMA tests" "the guest kernel has no rdma_rxe module (see vm.sh's output)"
		return 1
	fi
	for m in $(cat /etc/modules-rdma); do
		insmod "/lib/modules/$m.ko" >"$OUT" 2>&1 || {
			fail "insmod $m" "$(head -n1 "$OUT")"
			return 1
		}
	done
	pass "modules loaded: $(tr '\n' ' ' </etc/modules-rdma)"
	expect_good "dummy0 up with $R_NET/24, mtu ${R_NETMTU:-1500}" \
		sh -c "ip link set dummy0 mtu ${R_NETMTU:-1500} && ip link set dummy0 up && ip addr add $R_NET/24 dev dummy0" || return 1
	expect_good "rdma link add rxe0 type rxe netdev dummy0 (RDMA_NLDEV_CMD_NEWLINK)" rdma-agent link-add rxe0 dummy0 || return 1
	wait_file /dev/infiniband/uverbs0 10
	expect_good "/dev/infiniband/uverbs0 and /sys/class/infiniband/rxe0 exist" \
		test -c /dev/infiniband/uverbs0 -a -d /sys/class/infiniband/rxe0 || return 1
	info "rxe0 port 1: $(cat /sys/class/infiniband/rxe0/ports/1/state 2>/dev/null), mtu $(cat /sys/class/infiniband/rxe0/ports/1/active_mtu 2>/dev/null)"
}

# Item 1 and 2: a temporary seal. The registration's bytes are the file's; every
# extent-map change is refused with ETXTBSY; SIGKILL releases everything.
rdma_temporary() {
	f=$MNT/temp.bin
	truncate -s $((2 * R_SLOT)) "$f"
	if ! start_agent /tmp/r-temp "$DEV" "$f" $R_SLOT $R_SLOT 1; then
		fail "temporary seal: the agent seals, maps, registers and serves" "it exited or did not answer within 120 s"
		return
	fi
	if ! grep -q '^ok' /tmp/r-temp/ready; then
		cp /tmp/r-temp.log "$OUT"
		fail "temporary seal: the agent seals, maps, registers and serves" "$(cat /tmp/r-temp/ready)"
		kill -9 $AGENT_PID 2>/dev/null
		return
	fi
	pass "temporary seal on [2M, 4M), SETUPMAPPING, mmap of $DEV, ibv_reg_mr, RDMA WRITE + READ of 2 MiB from a second QP: exact ($(cut -d' ' -f3 /tmp/r-temp/ready) ms)"
	info "agent: $(grep -E '^(extent|window vma|ibv_reg_mr)' /tmp/r-temp.log | tr '\n' ';')"
	expect_good "read(2) of the file by another process returns the bytes the RDMA WRITE put into the window" \
		rdma-agent check "$f" $R_SLOT $R_SLOT 1
	dd if=/dev/zero of=/tmp/zero2m bs=1M count=2 2>/dev/null
	expect_good "the 2 MiB before the sealed range still read as zeros" \
		sh -c "dd if='$f' bs=1M count=2 2>/dev/null | cmp - /tmp/zero2m"
	expect_stat "sealfs stat while registered" 1-2 "seals=1 pins=1"
	expect_good "the kernel holds the agent's two memory registrations (window and client buffer): mr=2" \
		sh -c "rdma-agent res | tr ' ' '\n' | grep -qx mr=2"
	info "rxe0 resources while registered: $(rdma-agent res)"
	expect_try "temporary seal: truncate to 0 while registered" ETXTBSY truncate "$f" 0
	expect_try "temporary seal: truncate to 3 MiB (inside the range) while registered" ETXTBSY truncate "$f" $((3 * R_SLOT / 2))
	expect_try "temporary seal: punch 4 KiB inside the range while registered" ETXTBSY punch "$f" $((R_SLOT + 4096)) 4096
	expect_try "temporary seal: unlink while registered" ETXTBSY unlink "$f"
	expect_try "temporary seal: truncate up to 8 MiB (past the range: no block moves, size is not sealed)" ok truncate "$f" $((4 * R_SLOT))
	expect_good "the registered bytes are unchanged after the refused changes" rdma-agent check "$f" $R_SLOT $R_SLOT 1
	kill -9 $AGENT_PID
	wait $AGENT_PID 2>/dev/null
	if wait_stat seals 0 10 && wait_stat pins 0 10; then
		pass "SIGKILL of the agent releases the seal and the mapping pin ($(rdma-agent stat $MNT))"
	else
		fail "SIGKILL of the agent releases the seal and the mapping pin" "$(rdma-agent stat $MNT)"
	fi
	expect_good "SIGKILL of the agent releases its registrations: mr=0 ($(rdma-agent res))" \
		sh -c "rdma-agent res | tr ' ' '\n' | grep -qx mr=0"
	expect_try "after SIGKILL: truncate to 0" ok truncate "$f" 0
	# The truncate may free the blocks before the daemon's exit watch (a pidfd polled
	# every 200 ms) has seen the agent go: they are held back until it has.
	if wait_stat quarantined 0 2; then
		pass "after SIGKILL: nothing stays quarantined (the daemon saw the agent exit)"
	else
		fail "after SIGKILL: nothing stays quarantined" "$(rdma-agent stat $MNT)"
	fi
	rm -f "$f"
}

# fence_check CTL WHAT: after a revocation, the freed blocks are quarantined while the
# agent lives, no file gets them, the registration still reaches them, SEAL says ENOLINK;
# after SIGKILL the quarantine ends.
fence_check() {
	_ctl=$1 _what=$2
	q=$(stat_field quarantined)
	if [ -n "$q" ] && [ "$q" -ge $((R_SLOT / 4096)) ]; then
		pass "$_what: the blocks freed from the revoked range are quarantined ($q blocks) while the agent lives"
	else
		fail "$_what: the blocks freed from the revoked range are quarantined" "quarantined=$q"
	fi
	if expect_good "$_what: fallocate until ENOSPC" rdma-agent fill $MNT/fill.bin; then
		info "$_what: $(cat "$OUT")"
		expect_good "$_what: no block of the filled device is one the agent's registration reaches" \
			rdma-agent overlap $MNT/fill.bin "$_ctl/extents"
	fi
	echo 7 >"$_ctl/write2"
	if wait_file "$_ctl/write2-done" 60; then
		expect_good "$_what: the live registration still reaches its blocks (RDMA WRITE + READ exact); SEAL answers ENOLINK" \
			grep -qx 'ok seal=ENOLINK' "$_ctl/write2-done"
		[ -s "$OUT" ] || cat "$_ctl/write2-done" >"$OUT"
	else
		fail "$_what: the agent answered write2" "no answer in 60 s"
	fi
	rm -f $MNT/fill.bin
	kill -9 $AGENT_PID
	wait $AGENT_PID 2>/dev/null
	if wait_stat quarantined 0 10; then
		pass "$_what: the quarantine ends when the agent exits (SIGKILL)"
	else
		fail "$_what: the quarantine ends when the agent exits" "$(rdma-agent stat $MNT)"
	fi
}

# Item 2, revocation: root revokes the temporary seal (sealfs unseal --force) of an
# agent that keeps its registration (-i: it does not answer the POLLPRI that follows).
rdma_revoke() {
	f=$MNT/revoke.bin
	truncate -s $R_SLOT "$f"
	if ! start_agent /tmp/r-rev -i "$DEV" "$f" 0 $R_SLOT 2 || ! grep -q '^ok' /tmp/r-rev/ready; then
		fail "revoke: the agent registers" "$(cat /tmp/r-rev/ready 2>/dev/null)"
		kill -9 $AGENT_PID 2>/dev/null
		return
	fi
	r0=$(stat_field revocations)
	expect_good "revoke: sealfs unseal --force by root" sfs 30 unseal --force "$f"
	expect_stat "revoke: the seal and the pin are revoked" 4 "revocations=$((r0 + 2))"
	expect_good "revoke: the agent is woken with POLLPRI" wait_file /tmp/r-rev/recall-ignored 10
	expect_try "revoke: then truncate to 0" ok truncate "$f" 0
	fence_check /tmp/r-rev "revoke"
	rm -f "$f"
}

# Item 3: a breakable seal is recalled; the agent answers, or is revoked at break_timeout.
rdma_breakable() {
	f=$MNT/brk.bin
	truncate -s $R_SLOT "$f"
	if ! start_agent /tmp/r-brk -b "$DEV" "$f" 0 $R_SLOT 3 || ! grep -q '^ok' /tmp/r-brk/ready; then
		fail "breakable: the agent registers" "$(cat /tmp/r-brk/ready 2>/dev/null)"
		kill -9 $AGENT_PID 2>/dev/null
	else
		rv0=$(stat_field revocations)
		set -- $(rdma-agent try truncate "$f" 0)
		if [ "$1" = ok ] && [ "$2" -lt 900 ]; then
			pass "breakable: a conflicting truncate proceeds once the agent answers the recall ($2 ms, break_timeout 1000 ms)"
		else
			fail "breakable: a conflicting truncate proceeds once the agent answers the recall" "got $*"
		fi
		wait $AGENT_PID 2>/dev/null
		expect_good "breakable: the agent got POLLPRI and answered: ibv_dereg_mr, munmap, REMOVEMAPPING, UNSEAL all 0 ($(cat /tmp/r-brk/recalled 2>/dev/null))" \
			sh -c "set -- \$(cat /tmp/r-brk/recalled) && [ \$1 -ge 1 ] && [ \"\$2 \$3 \$4 \$5\" = 'ok ok ok ok' ]"
		wait_stat pins 0 10
		expect_stat "breakable: nothing revoked, nothing quarantined, no seal or pin left" 1,2,4,5 \
			"seals=0 pins=0 revocations=$rv0 quarantined=0"
	fi
	rm -f "$f"

	f=$MNT/ign.bin
	truncate -s $R_SLOT "$f"
	if ! start_agent /tmp/r-ign -b -i "$DEV" "$f" 0 $R_SLOT 5 || ! grep -q '^ok' /tmp/r-ign/ready; then
		fail "ignored recall: the agent registers" "$(cat /tmp/r-ign/ready 2>/dev/null)"
		kill -9 $AGENT_PID 2>/dev/null
		return
	fi
	rv0=$(stat_field revocations)
	set -- $(rdma-agent try truncate "$f" 0)
	if [ "$1" = ok ] && [ "$2" -ge 900 ] && [ "$2" -lt 10000 ]; then
		pass "ignored recall: the truncate proceeds at break_timeout ($2 ms, break_timeout 1000 ms)"
	else
		fail "ignored recall: the truncate proceeds at break_timeout" "got $*"
	fi
	expect_good "ignored recall: the agent saw POLLPRI and kept its registration" test -e /tmp/r-ign/recall-ignored
	expect_stat "ignored recall: the seal and the pin were revoked at the deadline" 4 "revocations=$((rv0 + 2))"
	fence_check /tmp/r-ign "ignored recall"
	rm -f "$f"
}

# Item 4: a forking server. The parent registers and exits; two workers serve through
# the inherited registration; the seal lasts until the last close.
rdma_fork() {
	f=$MNT/fork.bin
	truncate -s $R_SLOT "$f"
	if ! start_agent /tmp/r-fork -w 2 "$DEV" "$f" 0 $R_SLOT 4; then
		fail "fork: the parent registers and forks two workers" "no ready file"
		return
	fi
	w0=$(sed -n 's/^worker 0: pid //p' /tmp/r-fork.log)
	w1=$(sed -n 's/^worker 1: pid //p' /tmp/r-fork.log)
	wait $AGENT_PID 2>/dev/null
	expect_good "fork: the parent has exited, workers $w0 and $w1 live" sh -c "! kill -0 $AGENT_PID 2>/dev/null && kill -0 $w0 && kill -0 $w1"
	expect_try "fork: truncate while only the workers hold the descriptor" ETXTBSY truncate "$f" 0
	touch /tmp/r-fork/go
	if wait_file /tmp/r-fork/worker-0 60 && wait_file /tmp/r-fork/worker-1 60; then
		expect_good "fork: each worker wrote and read back its 1 MiB through the inherited registration, from a QP of its own context ($(cat /tmp/r-fork/worker-0) / $(cat /tmp/r-fork/worker-1))" \
			sh -c "grep -q '^ok .*FLUSHMAPPING ok' /tmp/r-fork/worker-0 && grep -q '^ok .*FLUSHMAPPING ok' /tmp/r-fork/worker-1"
		expect_good "fork: a worker posting on a QP of the parent's context gets EACCES (rxe rings its doorbell with write(2) on the uverbs descriptor; the kernel refuses other credentials)" \
			grep -q "the parent's QP: ibv_post_send: EACCES" /tmp/r-fork/worker-0
	else
		fail "fork: the workers served" "$(cat /tmp/r-fork/worker-* 2>/dev/null | tr '\n' ' ')"
	fi
	expect_good "fork: read(2) returns the bytes both workers' RDMA WRITEs put there" rdma-agent check "$f" 0 $R_SLOT 4
	touch /tmp/r-fork/exit-0
	i=0
	while kill -0 $w0 2>/dev/null && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	sleep 0.3
	expect_try "fork: truncate after one worker exited (one still holds the description)" ETXTBSY truncate "$f" 0
	touch /tmp/r-fork/exit-1
	i=0
	while kill -0 $w1 2>/dev/null && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if wait_stat seals 0 10 && wait_stat pins 0 10; then
		pass "fork: the last worker's exit (last close) releases the seal and the pin"
	else
		fail "fork: the last worker's exit releases the seal and the pin" "$(rdma-agent stat $MNT)"
	fi
	expect_try "fork: truncate after the last close" ok truncate "$f" 0
	rm -f "$f"
}

# Item 5: on-demand paging.
rdma_odp() {
	if ! rdma-agent odp >"$OUT" 2>&1; then
		fail "odp: query rxe0" "$(head -n1 "$OUT")"
		return
	fi
	info "odp: $(cat "$OUT")"
	if grep -q 'IBV_ODP_SUPPORT set' "$OUT"; then
		fail "odp: this kernel's rxe0 offers on-demand paging; the ODP recall test is not written yet" "$(cat "$OUT")"
	elif grep -q 'IBV_ODP_SUPPORT clear.*ON_DEMAND)=EOPNOTSUPP' "$OUT"; then
		pass "odp: rxe on kernel $(uname -r) has no on-demand paging: no IBV_ODP_SUPPORT, ibv_reg_mr(IBV_ACCESS_ON_DEMAND) fails with EOPNOTSUPP"
		info "odp: the recall of an ODP registration is tested in boot 3, on a kernel whose rxe has ODP"
	else
		fail "odp: the answer is EOPNOTSUPP without IBV_ODP_SUPPORT" "$(cat "$OUT")"
	fi
}

# Item 5, on a kernel whose rxe has ODP: the registration takes no pin; a recall is
# answered by unmapping (no ibv_dereg_mr); the registration's next access faults instead
# of reaching the blocks the truncate freed; mapped again, the same registration reaches
# the file's new blocks.
rdma_odp_recall() {
	# With 1024-byte packets this kernel's rxe puts (and reads) the packets of an ODP
	# registration's page at the page's start: recorded, not required (a fixed kernel
	# passes it); the tests below use 4096-byte packets, one per page.
	rdma-agent odp >/tmp/odp1024.out 2>&1
	info "odp, path MTU 1024: $(cat /tmp/odp1024.out)"
	export RDMA_AGENT_MTU=4096
	if ! rdma-agent odp >"$OUT" 2>&1; then
		fail "odp: query rxe0" "$(head -n1 "$OUT")"
		return
	fi
	info "odp, path MTU 4096: $(cat "$OUT")"
	cp "$OUT" /tmp/odp.out
	expect_good "odp: rxe on kernel $(uname -r) offers on-demand paging; an ODP registration of anonymous memory serves RDMA WRITE + READ exactly (path MTU 4096)" \
		grep -q 'IBV_ODP_SUPPORT set.*ON_DEMAND)=ok.*(path MTU 4096): ok' /tmp/odp.out || return
	f=$MNT/odp.bin
	truncate -s $R_SLOT "$f"
	if ! start_agent /tmp/r-odp -b -o "$DEV" "$f" 0 $R_SLOT 11 || ! grep -q '^ok' /tmp/r-odp/ready; then
		cp /tmp/r-odp.log "$OUT"
		fail "odp: breakable seal, window, ibv_reg_mr(IBV_ACCESS_ON_DEMAND), RDMA WRITE + READ" "$(cat /tmp/r-odp/ready 2>/dev/null)"
		kill -9 $AGENT_PID 2>/dev/null
		return
	fi
	pass "odp: breakable seal, window, ibv_reg_mr(IBV_ACCESS_ON_DEMAND) of the window, RDMA WRITE + READ of 2 MiB: exact"
	info "agent: $(grep -E '^(extent|window vma|ibv_reg_mr)' /tmp/r-odp.log | tr '\n' ';')"
	expect_good "odp: read(2) returns the RDMA-written bytes" rdma-agent check "$f" 0 $R_SLOT 11
	set -- $(rdma-agent try truncate "$f" 0)
	if [ "$1" = ok ] && [ "$2" -lt 900 ]; then
		pass "odp: a conflicting truncate proceeds once the agent has unmapped the window, without ibv_dereg_mr ($2 ms)"
	else
		fail "odp: a conflicting truncate proceeds once the agent unmapped the window" "got $*"
	fi
	expect_good "odp: the agent answered the recall: munmap, REMOVEMAPPING, UNSEAL all 0 ($(cat /tmp/r-odp/recalled 2>/dev/null))" \
		sh -c "set -- \$(cat /tmp/r-odp/recalled) && [ \"\$2 \$3 \$4\" = 'ok ok ok' ]"
	expect_good "odp: the registration lives on through the recall (mr=2: $(rdma-agent res))" \
		sh -c "rdma-agent res | tr ' ' '\n' | grep -qx mr=2"
	wait_stat pins 0 10
	expect_stat "odp: nothing revoked or quarantined" 4,5 "revocations=0 quarantined=0"
	echo 12 >/tmp/r-odp/access
	if wait_file /tmp/r-odp/access-done 60; then
		info "odp: access after the recall: $(cat /tmp/r-odp/access-done)"
		expect_good "odp: the registration's next RDMA WRITE faults (an error completion) and the freed blocks still hold what they held" \
			grep -q '^fail .* stale=unchanged$' /tmp/r-odp/access-done
	else
		fail "odp: the agent answered access" "no answer in 60 s"
	fi
	# Another file takes the freed blocks, so the range maps to other blocks next time.
	dd if=/dev/zero of=/tmp/zero2m bs=1M count=2 2>/dev/null
	dd if=/tmp/zero2m of=$MNT/odp-other.bin bs=1M 2>/dev/null
	truncate -s $R_SLOT "$f"
	echo 13 >/tmp/r-odp/remap
	if wait_file /tmp/r-odp/remap-done 60; then
		expect_good "odp: sealed and mapped again (other blocks) at the same address, the same registration reaches the file's new blocks ($(cat /tmp/r-odp/remap-done))" \
			grep -qx 'ok blocks=other' /tmp/r-odp/remap-done
		expect_good "odp: read(2) returns the bytes written through the re-mapped window" rdma-agent check "$f" 0 $R_SLOT 13
		expect_good "odp: the file that took the old blocks still reads as zeros" cmp $MNT/odp-other.bin /tmp/zero2m
	else
		fail "odp: the agent answered remap" "no answer in 60 s"
	fi
	touch /tmp/r-odp/stop
	wait $AGENT_PID
	if wait_stat seals 0 10 && wait_stat pins 0 10; then
		pass "odp: the agent's exit releases the seal and the pin"
	else
		fail "odp: the agent's exit releases the seal and the pin" "$(rdma-agent stat $MNT)"
	fi
	rm -f "$f" $MNT/odp-other.bin
}

# Item 1: a file written by RDMA, torn down in order, read back after the reboot.
rdma_keep() {
	f=$MNT/keep.bin
	truncate -s $((2 * R_SLOT)) "$f"
	if ! start_agent /tmp/r-keep "$DEV" "$f" $R_SLOT $R_SLOT 6 || ! grep -q '^ok' /tmp/r-keep/ready; then
		fail "keep: the agent registers and writes" "$(cat /tmp/r-keep/ready 2>/dev/null)"
		kill -9 $AGENT_PID 2>/dev/null
		return
	fi
	touch /tmp/r-keep/stop
	wait $AGENT_PID 2>/dev/null
	expect_good "keep: the agent tore down in order: ibv_dereg_mr, munmap, REMOVEMAPPING, UNSEAL all 0" \
		grep -qx 'ok ok ok ok' /tmp/r-keep/stopped
	expect_good "keep: read(2) returns the RDMA-written bytes after the agent's flush and teardown" \
		rdma-agent check "$f" $R_SLOT $R_SLOT 6
	wait_stat pins 0 10
	expect_stat "keep: no seal, pin or quarantine left" 1,2,5 "seals=0 pins=0 quarantined=0"
	echo ok >$H/rdma-keep
}

rdma_phase() {
	case $PHASE in
	1)
		expect_good "ndctl create-namespace --mode=devdax --align=2M" \
			ndctl create-namespace -f -e namespace0.0 --mode=devdax --align=2M || return
		wait_file $DEV 5
		expect_good "mkfs $DEV" sfs 120 mkfs $DEV || return
		expect_good "mount $DEV $MNT -o break_timeout=1000" sfs 120 mount $DEV $MNT -o break_timeout=1000 || return
		if rdma_setup; then
			t0=$(cut -d' ' -f1 /proc/uptime)
			rdma_temporary
			rdma_revoke
			rdma_breakable
			rdma_fork
			rdma_odp
			rdma_keep
			info "RDMA tests took $(awk -v a="$t0" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%.1f", b - a }')s"
		fi
		do_umount_fsck
		;;
	3)
		# the newer kernel (vm.sh: the ODP boot), whose rxe has on-demand paging
		wait_file $DEV 10
		expect_good "mount $DEV $MNT -o break_timeout=1000 (kernel $(uname -r))" sfs 120 mount $DEV $MNT -o break_timeout=1000 || return
		# mtu 9000: rxe's active MTU becomes 4096 (see rdma_odp_recall)
		if R_NETMTU=9000 rdma_setup; then
			rdma_odp_recall
		fi
		do_umount_fsck
		;;
	2)
		expect_good "mount $DEV $MNT" sfs 120 mount $DEV $MNT || return
		if [ -s $H/rdma-keep ]; then
			expect_good "after the reboot: read(2) returns the bytes the RDMA WRITE put into the window in boot 1" \
				rdma-agent check $MNT/keep.bin $R_SLOT $R_SLOT 6
		else
			skip "after the reboot: the RDMA-written file" "boot 1 did not write it"
		fi
		do_umount_fsck
		;;
	*) fail "unknown phase $PHASE" ;;
	esac
}
