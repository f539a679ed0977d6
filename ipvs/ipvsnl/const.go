package ipvsnl

// The IPVS generic netlink family's numbers (include/uapi/linux/ip_vs.h),
// declared once for the whole module.
const (
	GenlName    = "IPVS"
	GenlVersion = 1
)

// Commands (IPVS_CMD_*).
const (
	CmdNewService = 1
	CmdSetService = 2
	CmdDelService = 3
	CmdGetService = 4
	CmdNewDest    = 5
	CmdSetDest    = 6
	CmdDelDest    = 7
	CmdGetDest    = 8
	CmdNewDaemon  = 9
	CmdDelDaemon  = 10
	CmdGetDaemon  = 11
	CmdGetConfig  = 13
	CmdGetInfo    = 15
)

// Top-level attributes (IPVS_CMD_ATTR_*).
const (
	CmdAttrService       = 1
	CmdAttrDest          = 2
	CmdAttrDaemon        = 3
	CmdAttrTimeoutTCP    = 4
	CmdAttrTimeoutTCPFin = 5
	CmdAttrTimeoutUDP    = 6
)

// Service attributes (IPVS_SVC_ATTR_*).
const (
	SvcAttrAF        = 1
	SvcAttrProtocol  = 2
	SvcAttrAddr      = 3
	SvcAttrPort      = 4
	SvcAttrFWMark    = 5
	SvcAttrSchedName = 6
	SvcAttrFlags     = 7
	SvcAttrTimeout   = 8
	SvcAttrNetmask   = 9
	SvcAttrStats     = 10
	SvcAttrPEName    = 11
	SvcAttrStats64   = 12
)

// Destination attributes (IPVS_DEST_ATTR_*).
const (
	DestAttrAddr         = 1
	DestAttrPort         = 2
	DestAttrFwdMethod    = 3
	DestAttrWeight       = 4
	DestAttrUThresh      = 5
	DestAttrLThresh      = 6
	DestAttrActiveConns  = 7
	DestAttrInactConns   = 8
	DestAttrPersistConns = 9
	DestAttrStats        = 10
	DestAttrAddrFamily   = 11
	DestAttrStats64      = 12
	DestAttrTunType      = 13
	DestAttrTunPort      = 14
	DestAttrTunFlags     = 15
)

// Sync daemon attributes (IPVS_DAEMON_ATTR_*).
const (
	DaemonAttrState       = 1
	DaemonAttrMcastIfn    = 2
	DaemonAttrSyncID      = 3
	DaemonAttrSyncMaxLen  = 4
	DaemonAttrMcastGroup  = 5
	DaemonAttrMcastGroup6 = 6
	DaemonAttrMcastPort   = 7
	DaemonAttrMcastTTL    = 8
)

// Counter attributes (IPVS_STATS_ATTR_*), in both stats nests.
const (
	StatsAttrConns    = 1
	StatsAttrInPkts   = 2
	StatsAttrOutPkts  = 3
	StatsAttrInBytes  = 4
	StatsAttrOutBytes = 5
	StatsAttrCPS      = 6
	StatsAttrInPPS    = 7
	StatsAttrOutPPS   = 8
	StatsAttrInBPS    = 9
	StatsAttrOutBPS   = 10
)

// Info attributes (IPVS_INFO_ATTR_*).
const (
	InfoAttrVersion     = 1
	InfoAttrConnTabSize = 2
)

// Service flags (IP_VS_SVC_F_*). The kernel sets "hashed" itself;
// persistence, one-packet scheduling and the scheduler's own three flags
// are the caller's.
const (
	FlagPersistent = 0x0001
	FlagHashed     = 0x0002
	FlagOnePacket  = 0x0004 // "ops"
	FlagSched1     = 0x0008 // sh-fallback / mh-fallback
	FlagSched2     = 0x0010 // sh-port / mh-port
	FlagSched3     = 0x0020
)

// FwdMask selects the forwarding method (IP_VS_CONN_F_FWD_MASK) in a
// destination's FWD_METHOD.
const FwdMask = 0x7

// FwdTunnel is the tunnel forwarding method (IP_VS_CONN_F_TUNNEL), the
// only one whose destinations carry the tunnel attributes below.
const FwdTunnel = 2

// Tunnel encapsulations of a tunnel destination (DEST_ATTR_TUN_TYPE,
// IP_VS_CONN_F_TUNNEL_TYPE_*; kernel 5.3 on, GRE 5.4 on). Older kernels
// ignore the attribute and tunnel with IPIP.
const (
	TunIPIP = 0
	TunGUE  = 1 // needs a DEST_ATTR_TUN_PORT
	TunGRE  = 2
)

// Tunnel checksum flags (DEST_ATTR_TUN_FLAGS, IP_VS_TUNNEL_ENCAP_FLAG_*);
// none set is "nocsum". Remote checksum offload is GUE's only.
const (
	TunFlagCsum    = 0x1
	TunFlagRemCsum = 0x2
)

// PENameMax is the longest persistence engine name the kernel takes
// (IP_VS_PENAME_MAXLEN, the NUL included).
const PENameMax = 16

// Address families.
const (
	AFInet  = 2  // AF_INET
	AFInet6 = 10 // AF_INET6
)
