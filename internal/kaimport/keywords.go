package kaimport

import "strings"

// The keepalived keywords (from keepalived.conf(5), 2.2 to 2.4) that the importer
// recognises but does not convert, per block, with what to tell the user.
// Notes are for settings with no effect on how the pair behaves; warnings
// for behaviour director will not reproduce.

// kw gives every name in the space-separated list the same level and message.
func kw(level Level, msg, names string) map[string]known {
	m := map[string]known{}
	for _, n := range strings.Fields(names) {
		m[n] = known{level: level, msg: msg}
	}
	return m
}

func union(ms ...map[string]known) map[string]known {
	out := map[string]known{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

const (
	unsupported = "not supported by director; ignored"
	noProcess   = "ignored: a keepalived process setting with no director equivalent"
	noEmail     = "ignored: director sends no email; watch its log or use notify"
	noTracking  = "not supported: director cannot track this yet, so the instance's priority and state will not follow it"
	v3Checksum  = "not supported: director's VRRPv3 checksum always covers the IP pseudo-header (keepalived's default), so it and a peer with this set drop each other's adverts"
)

var topKnown = union(
	kw(Warning, "block not supported: director cannot track this yet, so the priority and state of instances that track it will not follow it", "bfd_instance track_group"),
	kw(Warning, "block not supported: director spaces gratuitous ARPs per instance (garp.interval)", "garp_group"),
	kw(Warning, "block not supported: configure these with the system's network configuration", "static_ipaddress static_routes static_rules"),
	kw(Warning, "block not supported: director follows the carrier state the kernel reports, without delays", "linkbeat_interfaces interface_up_down_delays"),
	kw(Warning, "block not supported: director's https checks use no client certificate", "SSL"),
	kw(Warning, "not supported: run director itself in the namespace (ip netns exec)", "net_namespace net_namespace_ipvs namespace_with_ipsets"),
	kw(Warning, unsupported, "linkbeat_use_polling"),
	kw(Note, noProcess, "instance use_pid_dir child_wait_time"),
)

var globalKnown = union(
	kw(Note, noEmail, "notification_email notification_email_from smtp_server smtp_helo_name smtp_connect_timeout smtp_alert smtp_alert_vrrp smtp_alert_checker no_email_faults no_checker_emails"),
	kw(Note, "ignored: director has no router id", "router_id lvs_id"),
	kw(Note, "ignored: director runs notify scripts as its own user", "script_user enable_script_security"),
	kw(Note, "ignored: director always accepts unicast adverts only from the listed peers", "vrrp_check_unicast_src"),
	kw(Note, "ignored: director removes only the services it created, and leaves others alone", "lvs_flush lvs_flush_on_stop"),
	kw(Note, "ignored: director always validates a new configuration before a reload, and keeps the running one if it is refused", "reload_check_config"),
	kw(Note, "ignored: director writes no dump files; director state and its metrics show its state", "state_file_location stats_file_location json_file_location json_version"),
	kw(Note, "ignored: director reads no iproute2 files (route tables are given as numbers)", "iproute_usr_dir iproute_etc_dir"),
	kw(Note, noProcess, "process_names process_name vrrp_process_name checker_process_name bfd_process_name "+
		"tmp_config_directory config_save_dir use_pid_dir instance child_wait_time data_use_instance "+
		"use_symlink_paths set_supplementary_groups reload_time_file reload_repeat reload_file random_seed umask include_check "+
		"dynamic_interfaces log_unknown_vrids checker_log_all_failures rs_init_notifies "+
		"max_auto_priority min_auto_priority_delay vrrp_priority checker_priority bfd_priority "+
		"vrrp_no_swap checker_no_swap bfd_no_swap vrrp_cpu_affinity checker_cpu_affinity bfd_cpu_affinity "+
		"vrrp_rt_priority checker_rt_priority bfd_rt_priority vrrp_rlimit_rttime checker_rlimit_rttime bfd_rlimit_rttime "+
		"vrrp_netlink_cmd_rcv_bufs vrrp_netlink_cmd_rcv_bufs_force vrrp_netlink_monitor_rcv_bufs vrrp_netlink_monitor_rcv_bufs_force "+
		"lvs_netlink_cmd_rcv_bufs lvs_netlink_cmd_rcv_bufs_force lvs_netlink_monitor_rcv_bufs lvs_netlink_monitor_rcv_bufs_force "+
		"process_monitor_rcv_bufs process_monitor_rcv_bufs_force vrrp_rx_bufs_policy vrrp_rx_bufs_multiplier "+
		"fifo_write_vrrp_states_on_reload"),
	kw(Warning, "not supported: director sends one burst of gratuitous ARPs on becoming master, and garp.refresh bursts after", "vrrp_garp_master_delay vrrp_garp_lower_prio_delay vrrp_garp_lower_prio_repeat vrrp_garp_master_refresh_repeat vrrp_garp_extra_if"),
	kw(Warning, "not supported: director uses the standard VRRP groups 224.0.0.18 and ff02::12", "vrrp_mcast_group4 vrrp_mcast_group6"),
	kw(Warning, "not supported: director accepts the VIPs on every node and installs no firewall rules", "vrrp_iptables vrrp_ipsets nftables nftables_priority nftables_counters nftables_ifindex nftables_ipvs nftables_ipvs_priority nftables_ipvs_start_fwmark"),
	kw(Warning, "not supported: director writes every line to one notify_fifo and runs no FIFO script; use notify_fifo", "notify_fifo_script vrrp_notify_fifo vrrp_notify_fifo_script lvs_notify_fifo lvs_notify_fifo_script vrrp_notify_priority_changes"),
	kw(Warning, "not supported: director has no SNMP or D-Bus interface", "snmp_socket enable_snmp_vrrp enable_snmp_checker enable_snmp_rfc enable_snmp_rfcv2 enable_snmp_rfcv3 enable_traps "+
		"snmp_vs_stats_update_interval snmp_rs_stats_update_interval enable_dbus dbus_service_name dbus_no_interface_name"),
	kw(Warning, "not supported: run these from the systemd unit (ExecStartPre=, ExecStopPost=)", "startup_script startup_script_timeout shutdown_script shutdown_script_timeout"),
	kw(Warning, "not supported: run director itself in the namespace (ip netns exec)", "net_namespace net_namespace_ipvs namespace_with_ipsets"),
	kw(Warning, unsupported, "vrrp_strict vrrp_skip_check_adv_addr vrrp_down_timer_adverts vrrp_lower_prio_no_advert "+
		"vrrp_higher_prio_send_advert lvs_timeouts disable_local_igmp vmac_prefix vmac_addr_prefix "+
		"vrrp_startup_delay vrrp_delay_after_boot linkbeat_use_polling default_interface"),
	kw(Warning, v3Checksum, "v3_checksum_as_v2"),
)

const notifyHint = "not supported: director runs notify_master, notify_backup, notify_fault, notify_stop and notify (INSTANCE <name> <MASTER|BACKUP|FAULT|STOP> <priority>); call this script from one of them"

var instanceKnown = union(
	kw(Warning, notifyHint, "notify_deleted notify_master_rx_lower_pri"),
	kw(Warning, noTracking, "track_bfd track_src_ip"),
	kw(Warning, "not supported: director's vmac is a macvlan with the VRRP MAC (use_vmac)", "use_vmac_addr use_ipvlan"),
	kw(Warning, "not supported: director sends one burst of gratuitous ARPs on becoming master, and garp.refresh bursts after", "garp_master_delay garp_lower_prio_delay garp_lower_prio_repeat garp_master_refresh_repeat garp_extra_if"),
	kw(Warning, "not supported: director always tracks the carrier of the instance's interface", "dont_track_primary linkbeat_use_polling"),
	kw(Note, "ignored: director always accepts unicast adverts only from the listed peers", "check_unicast_src"),
	kw(Note, "ignored: the VIPs decide the address family", "native_ipv6"),
	kw(Note, noEmail, "smtp_alert"),
	kw(Note, noProcess, "debug kernel_rx_buf_size"),
	kw(Note, "ignored: director always accepts packets to its VIPs (keepalived's default accept mode)", "accept"),
	kw(Warning, "not supported: director always accepts packets to its VIPs and installs no firewall rules", "no_accept"),
	kw(Note, "ignored: director needs no such flag; an instance may have no vips in VRRP version 2, while version 3 needs one (RFC 5798)", "no_virtual_ipaddress"),
	kw(Warning, v3Checksum, "v3_checksum_as_v2"),
	kw(Warning, "block not supported: director has no HMAC authentication of adverts, so a keepalived peer that enforces it drops director's adverts", "auth_hmac"),
	kw(Warning, unsupported, "strict_mode skip_check_adv_addr mcast_dst_ip unicast_fault_no_peer "+
		"old_unicast_checksum down_timer_adverts lower_prio_no_advert higher_prio_send_advert promote_secondaries vrf "+
		"notify_priority_changes timer_expired_backup"),
)

const alphaMsg = "ignored: director adds a real server only once a check has passed (at a fresh start), as alpha does"

var serviceKnown = union(
	kw(Note, alphaMsg, "alpha"),
	kw(Warning, "not supported: director runs no quorum or real server notify commands when it stops", "omega"),
	kw(Note, "ignored: director spreads the start of its checks on its own", "warmup"),
	kw(Note, noEmail, "smtp_alert"),
	kw(Note, "ignored: director has no SNMP", "snmp_name"),
	kw(Warning, unsupported, "ha_suspend sorry_server_inhibit sorry_server_lvs_method"),
)

const uncheckedMsg = "checker not supported: it is not converted, and unless the real server has another check it will not be health checked"

var realServerKnown = union(
	kw(Warning, uncheckedMsg, "BFD_CHECK"),
	kw(Note, alphaMsg, "alpha"),
	kw(Note, "ignored: director spreads the start of its checks on its own", "warmup"),
	kw(Note, noEmail, "smtp_alert"),
	kw(Note, "ignored: director has no SNMP", "snmp_name"),
	kw(Warning, unsupported, "track_file"),
)

var checkerKnown = union(
	kw(Warning, "not supported: director's checks go from the address the system (or bindto) picks, on a port it picks, without a mark", "bind_if bind_port fwmark"),
	kw(Note, alphaMsg, "alpha"),
	kw(Note, "ignored: director spreads the start of its checks on its own", "warmup"),
	kw(Note, "ignored: director logs every state change", "log_all_failures"),
	kw(Note, "ignored: director checks every url at once, each as a check of its own", "fast_recovery"),
	kw(Note, "ignored: director resets its check connections", "tls_compliant"),
	kw(Warning, "not supported: write one SMTP_CHECK per address", "host"),
)

var urlKnown = union(
	kw(Warning, "not supported: director's regex is RE2, matched within the first max_bytes of the body", "regex_min_offset regex_max_offset"),
	kw(Note, "ignored: RE2 needs no stack setting", "regex_stack"),
	kw(Note, "ignored: director resets its check connections", "tls_compliant"),
)
