# guest.sh runs inside a User-Mode Linux guest (see run.sh): it builds an
# IPVS table with every feature ipvsadm lists, makes traffic, and for each
# output form saves what ipvsadm 1.31 printed next to the raw state
# director read (snapshot.json) -- the golden cases in ../golden.
#
# Settings (environment; the guest's init must pass them in):
#   B         directory with "status" (a static binary running
#             ipvsadm.Main, i.e. `director status`) and "trafgen"
#             (static build of trafgen.go)
#   CONNFILES directory of synthetic connection tables (mkconnfiles.py)
#   OUT       where the cases go (a host directory mounted read-write)
# Every "NN.ours" file is director's output for the same arguments, run
# right after ipvsadm's; the last step compares them in the guest.
set -u
: "${B:?}" "${CONNFILES:?}" "${OUT:?}"
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mkdir -p $OUT
# run.sh has the guest's init load the modules (labboot -modules).
ip link set lo up

# capture NAME CMD...: a snapshot, ipvsadm's outputs, a second snapshot;
# retried until both snapshots agree so the outputs match the snapshot.
capture() {
	name=$1; shift
	d=$OUT/$name
	for try in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
		rm -rf $d; mkdir -p $d
		$B/status --snapshot > $d/snapshot.json
		i=0
		for args in "$@"; do
			i=$((i+1))
			f=$(printf '%02d' $i)
			echo "$args" > $d/$f.args
			ipvsadm $args > $d/$f.out 2> $d/$f.err
			echo $? > $d/$f.rc
			$B/status $args > $d/$f.ours 2> $d/$f.ourerr
			echo $? > $d/$f.ourrc
		done
		$B/status --snapshot > $d/snapshot2.json
		if cmp -s $d/snapshot.json $d/snapshot2.json; then
			rm $d/snapshot2.json
			echo "capture $name: ok after $try"
			return 0
		fi
		sleep 0.2
	done
	echo "capture $name: snapshots never agreed"
}

LIST_FORMS="-Ln|-l -n|--list --numeric|-L -n --sort|-Ln --exact|-Ln --stats|-Ln --stats --exact|-Ln --rate|-Ln --rate --exact|-Ln --thresholds|-Ln --persistent-conn|-Ln --tun-info|-Ln --nosort|-Ln --nosort --stats|-Sn|-S -n|-Ln --timeout|-Ln --daemon"
IFS='|'
set -- $LIST_FORMS
unset IFS
# plain -L resolves names: only safe while the table is empty
capture empty -L "$@"

# connection listings: ipvsadm reads a frozen copy of a connection table,
# bind-mounted over this process's /proc/<pid>/net, so its output and the
# table it read can be saved together
conncase() {
	name=$1; src=$2
	d=$OUT/$name
	rm -rf $d; mkdir -p $d /run/fakenet
	cat $src > /run/fakenet/ip_vs_conn
	cp /run/fakenet/ip_vs_conn $d/conn_table.txt
	i=0
	for args in "-Lnc" "-Lnc --persistent-conn" "-L -n -c"; do
		i=$((i+1))
		f=$(printf '%02d' $i)
		echo "$args" > $d/$f.args
		unshare -m sh -c "mount --bind /run/fakenet /proc/\$\$/net && exec ipvsadm $args" > $d/$f.out 2> $d/$f.err
		echo $? > $d/$f.rc
		unshare -m sh -c "mount --bind /run/fakenet /proc/\$\$/net && exec $B/status $args" > $d/$f.ours 2> $d/$f.ourerr
		echo $? > $d/$f.ourrc
	done
	echo "conncase $name: rc $(cat $d/01.rc)"
}
for f in $CONNFILES/*.txt; do
	n=$(basename $f .txt)
	conncase conns-$n $f
done

# sync daemons cannot run alongside services with mixed-family
# destinations, so they get a stage of their own
a() { ipvsadm "$@" || echo "FAILED: ipvsadm $*"; }
ip link add dummy1 type dummy; ip link set dummy1 multicast on; ip link set dummy1 up
a --start-daemon master --mcast-interface dummy1 --syncid 7
a --start-daemon backup --mcast-interface dummy1 --syncid 9 --mcast-group 239.1.2.3 --mcast-port 9000 --mcast-ttl 3 --sync-maxlen 1000
capture daemons "-Ln --daemon" "-L --daemon"
a --stop-daemon master
a --stop-daemon backup
a --start-daemon backup --mcast-interface dummy1 --mcast-group ff02::1:2
capture daemon6 "-Ln --daemon"
a --stop-daemon backup

# Namespaces: client cl and real server rs, joined to the director (root
# namespace) by veths; the director routes and NATs between them.
ip netns add cl; ip netns add rs
ip link add vcl type veth peer name eth0 netns cl
ip link add vrs type veth peer name eth0 netns rs
ip addr add 10.9.0.1/24 dev vcl; ip -6 addr add fd00:9::1/64 dev vcl nodad
ip addr add 10.8.0.1/24 dev vrs; ip -6 addr add fd00:8::1/64 dev vrs nodad
ip link set vcl up; ip link set vrs up
ip netns exec cl sh -c 'ip link set lo up; ip link set eth0 up; ip addr add 10.9.0.2/24 dev eth0; ip -6 addr add fd00:9::2/64 dev eth0 nodad; ip route add default via 10.9.0.1; ip -6 route add default via fd00:9::1'
ip netns exec rs sh -c 'ip link set lo up; ip link set eth0 up; ip addr add 10.8.0.2/24 dev eth0; ip addr add 10.8.0.3/24 dev eth0; ip addr add 10.8.0.4/24 dev eth0; ip -6 addr add fd00:8::2/64 dev eth0 nodad; ip route add default via 10.8.0.1; ip -6 route add default via fd00:8::1'
ip link add dummy0 type dummy; ip link set dummy0 multicast on; ip link set dummy0 up
ip addr add 10.7.0.1/32 dev dummy0; ip -6 addr add fd00:7::1/128 dev dummy0 nodad
# every other address is reachable through dummy0, so IPVS accepts it
ip route add default dev dummy0; ip -6 route add default dev dummy0
sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
ip netns exec rs $B/trafgen serve -a :8080,:8443 &

a --set 900 120 300
a -A -t 10.7.0.1:80 -s rr
a -a -t 10.7.0.1:80 -r 10.8.0.2:8080 -m
a -a -t 10.7.0.1:80 -r 10.8.0.3:8080 -m -w 0
a -A -t 10.7.0.1:443 -s wlc -p 300 -M 255.255.255.0
a -a -t 10.7.0.1:443 -r 10.8.0.2:8443 -m -x 100 -y 50
a -a -t 10.7.0.1:443 -r 10.8.0.4:8443 -m -w 2147483647 -x 2147483647 -y 7
a -A -u 10.7.0.1:53 -s wrr -o
a -a -u 10.7.0.1:53 -r 10.8.0.2:5353 -m -w 3
a -A -u 10.7.0.1:5060 -s rr -p 60 --pe sip
a -a -u 10.7.0.1:5060 -r 10.8.0.2:5060 -m
a -A --sctp-service 10.7.0.1:3868 -s lc
a -a --sctp-service 10.7.0.1:3868 -r 10.1.0.5 -g
a -A -t 192.168.100.10:8080 -s sh -b sh-fallback,sh-port
a -a -t 192.168.100.10:8080 -r 192.168.100.21 -g
a -a -t 192.168.100.10:8080 -r 10.1.0.22 -g -w 4
a -a -t 192.168.100.10:8080 -r 172.16.0.5 -i
a -a -t 192.168.100.10:8080 -r 200.0.0.5 -g
a -A -t 200.1.1.1:25 -s mh -b mh-fallback
a -a -t 200.1.1.1:25 -r 130.0.0.1 -g
a -a -t 200.1.1.1:25 -r 10.1.0.1 -g
a -A -t 200.1.1.1:26 -s mh -b mh-port,mh-fallback
a -A -t 130.0.0.9:80 -s sh -b sh-port
a -A -t 10.200.0.1:0 -s lblc -p
a -a -t 10.200.0.1:0 -r 10.1.0.71 -g
a -A -t 10.7.0.2:80 -s rr -b flag-1,flag-3
a -A -t 10.7.0.2:81 -s lblcr -b flag-2
a -A -t 10.7.0.2:82 -s fo
a -A -u 10.7.0.2:83 -s ovf -o -p 1 -M 255.0.255.0
a -A -t 10.7.0.3:80 -s dh
a -a -t 10.7.0.3:80 -r 10.1.0.61 -i --tun-type gue --tun-port 6080 --tun-csum
a -a -t 10.7.0.3:80 -r 10.1.0.62 -i --tun-type gre --tun-csum
a -a -t 10.7.0.3:80 -r 10.1.0.63 -i --tun-type gue --tun-port 6081 --tun-remcsum
a -a -t 10.7.0.3:80 -r 10.1.0.64 -i --tun-type gre
a -a -t 10.7.0.3:80 -r 10.1.0.65 -i --tun-type ipip
a -a -t 10.7.0.3:80 -r 2001:db8:1::61 -i
a -a -t 10.7.0.3:80 -r 10.1.0.66 -i --tun-type gue --tun-port 6082 --tun-nocsum
a -a -t 10.7.0.3:80 -r 2001:db8:1::66 -i --tun-type gre --tun-csum
# one-packet scheduling and the sip engine on a firewall mark and on IPv6
a -A -f 44 -s rr -p 30 --pe sip -o
a -a -f 44 -r 10.1.0.44 -g
a -A -u [2001:db8:7::53]:5060 -s sh -b sh-port -o -p 90 -M 64 --pe sip
a -a -u [2001:db8:7::53]:5060 -r [2001:db8:1::53]:5060 -i --tun-type gue --tun-port 6083 --tun-remcsum
a -A -t 10.7.0.4:80 -s rr
a -a -t 10.7.0.4:80 -r 10.7.0.1:8081 -g
a -a -t 10.7.0.4:80 -r 10.1.0.81 -g -w 65535
a -A -f 1 -s rr
a -a -f 1 -r 10.1.0.31 -g
a -A -f 3000000000 -s wlc
a -a -f 3000000000 -r 10.1.0.41:0 -g
a -A -f 42 -6 -s sed -p 60 -M 64
a -a -f 42 -6 -r 2001:db8:1::42 -g
a -A -f 43 -6 -s rr
a -A -t [fd00:7::1]:80 -s rr
a -a -t [fd00:7::1]:80 -r [fd00:8::2]:8080 -m
a -a -t [fd00:7::1]:80 -r [2001:db8:1::5]:8080 -m -w 0
a -A -u [2001:db8:7::53]:53 -s nq -p 120 -M 48
a -a -u [2001:db8:7::53]:53 -r 2001:db8:1::53 -g
a -A -t [2001:db8:7::1234:5678:9abc:def0]:65535 -s dh
a -a -t [2001:db8:7::1234:5678:9abc:def0]:65535 -r [2001:db8:1:2:3:4:5:6]:65535 -g
a -A -t [::102:304]:80 -s rr
a -a -t [::102:304]:80 -r [::5.6.7.8]:80 -g
a -A --sctp-service [2001:db8:7::1]:3868 -s wrr
# addresses around the 32-bit ring: ipvsadm's wrapped comparisons are not
# transitive here, so only the same sort algorithm gives the same order
a -A -u 100.100.100.100:9 -s rr
for o in 5 25 45 65 85 105 125 145 165 185 205 223 245; do
	a -A -u $o.0.0.9:9 -s rr
	a -a -u 100.100.100.100:9 -r $o.1.1.1 -g
done

# traffic: bulk TCP through the NAT services (v4 and v6), UDP, SIP
T0=$(date +%s)
ip netns exec cl $B/trafgen send -a 10.7.0.1:80 -n ${BULK:-1100000000} -c 1
ip netns exec cl $B/trafgen send -a 10.7.0.1:80 -n 1000 -c 50
ip netns exec cl $B/trafgen send -a 10.7.0.1:443 -n 100000 -c 20
ip netns exec cl $B/trafgen send -a [fd00:7::1]:80 -n 5000000 -c 3
ip netns exec cl $B/trafgen udp -a 10.7.0.1:53 -m hello -c 200
ip netns exec cl $B/trafgen udp -a 10.7.0.1:5060 -c 2 -m 'INVITE sip:bob@example.com SIP/2.0\nVia: SIP/2.0/UDP 10.9.0.2\nCall-ID: a84b4c76e66710@pc33.example.com\nCSeq: 1 INVITE\nContent-Length: 0\n\n'
ip netns exec cl $B/trafgen hold -a 10.7.0.1:80 &
ip netns exec cl $B/trafgen hold -a [fd00:7::1]:80 &
a -e -t [fd00:7::1]:80 -r [2001:db8:1::5]:8080 -m -w 5
ip netns exec cl $B/trafgen hold -a [fd00:7::1]:80 &
sleep 1
echo "traffic took $(( $(date +%s) - T0 ))s"

capture rates "-Ln --rate" "-Ln --rate --exact" "-Ln --stats" "-Ln --stats --exact"
SVC_FORMS="-Ln -t 10.7.0.1:80|-Ln -t 10.7.0.1:80 --stats|-Ln -t 10.7.0.1:80 --rate --exact|-Ln --udp-service 10.7.0.1:53|-Ln --sctp-service 10.7.0.1:3868|-Ln -f 1|-Ln -f 3000000000|-Ln -f 42 -6|-Ln -f 42|-Ln -t [fd00:7::1]:80 --stats|-Ln -t 10.200.0.1|-Ln -t 1.2.3.4:80|-Ln -t 10.7.0.1:443 --thresholds|-Ln -u [2001:db8:7::53]:53 --persistent-conn|-Ln -t [::102:304]:80|-Ln -u 10.7.0.1:5060|-Ln -f 44|-Ln -u [2001:db8:7::53]:5060 --tun-info|-Ln -t 10.7.0.3:80 --tun-info"
cat /proc/net/ip_vs_conn > /run/live_conns
conncase conns-live /run/live_conns

# let the rate estimates decay to zero so the table holds still
echo "settling from $(date +%s)"
for i in $(seq 1 120); do
	$B/status --snapshot > /run/s1; sleep 2.5; $B/status --snapshot > /run/s2
	if cmp -s /run/s1 /run/s2; then echo "settled after $i at $(date +%s)"; break; fi
	[ $((i % 10)) = 0 ] && echo "settle $i $(date +%s) $(diff /run/s1 /run/s2 | head -3 | tr '\n' ' ')"
done
IFS='|'
set -- $LIST_FORMS
unset IFS
capture table "$@"
IFS='|'
set -- $SVC_FORMS
unset IFS
capture service "$@"
dmesg | grep -i ipvs | tail -20

# live comparison: director's own output, run right after ipvsadm's
for f in $OUT/*/*.out; do
	b=${f%.out}
	if ! cmp -s $f $b.ours; then echo "LIVE DIFF: $b ($(cat $b.args))"; fi
	if [ "$(cat $b.rc)" = 0 ] && [ "$(cat $b.ourrc)" != 0 ]; then echo "LIVE RC: $b"; fi
	if [ "$(cat $b.rc)" != 0 ] && [ "$(cat $b.ourrc)" = 0 ]; then echo "LIVE RC: $b"; fi
done
echo "live comparison done"
