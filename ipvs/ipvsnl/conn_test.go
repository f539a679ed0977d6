package ipvsnl

import (
	"net/netip"
	"slices"
	"syscall"
	"testing"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
)

// fakeKernel answers IPVS read and daemon requests from a small table,
// and records the requests as decoded commands.
type fakeKernel struct {
	svcs    []Service
	dests   map[Key][]genetlink.Message
	daemons []Daemon
	cmds    []uint8
	keys    []Key // of GET_SERVICE and GET_DEST requests
	started []Daemon
	stopped []uint32
}

func (k *fakeKernel) answer(t *testing.T) func(netlink.Message) ([][]byte, syscall.Errno) {
	genl := func(cmd uint8, attrs []byte) []byte { return append([]byte{cmd, GenlVersion, 0, 0}, attrs...) }
	return func(m netlink.Message) ([][]byte, syscall.Errno) {
		cmd, body := m.Data[0], []genetlink.Message{{Data: m.Data[4:]}}
		k.cmds = append(k.cmds, cmd)
		switch cmd {
		case CmdGetService:
			var out [][]byte
			var asked *Key
			if len(m.Data) > 4 {
				ks, err := ParseServices(body)
				if err != nil || len(ks) != 1 {
					t.Errorf("GET_SERVICE request: %v %v", ks, err)
					return nil, syscall.EINVAL
				}
				asked = &ks[0].Key
				k.keys = append(k.keys, *asked)
			}
			for i := range k.svcs {
				if asked == nil || k.svcs[i].Key == *asked {
					out = append(out, genl(cmd, serviceMessage(t, k.svcs[i].Key, k.svcs[i].PEName, []byte{255, 255, 255, 255}).Data))
				}
			}
			if asked != nil && len(out) == 0 {
				return nil, syscall.ESRCH // as ip_vs_genl_get_cmd answers
			}
			return out, 0
		case CmdGetDest:
			ks, err := ParseServices(body)
			if err != nil || len(ks) != 1 {
				t.Errorf("GET_DEST request: %v %v", ks, err)
				return nil, syscall.EINVAL
			}
			k.keys = append(k.keys, ks[0].Key)
			var out [][]byte
			for _, d := range k.dests[ks[0].Key] {
				out = append(out, genl(cmd, d.Data))
			}
			return out, 0
		case CmdGetDaemon:
			var out [][]byte
			for i := range k.daemons {
				out = append(out, genl(cmd, encodeDaemon(&k.daemons[i], true)))
			}
			return out, 0
		case CmdNewDaemon, CmdDelDaemon:
			ds, err := ParseDaemons(body)
			if err != nil || len(ds) != 1 {
				t.Errorf("daemon request: %v %v", ds, err)
				return nil, syscall.EINVAL
			}
			if cmd == CmdNewDaemon {
				k.started = append(k.started, ds[0])
				return nil, 0
			}
			k.stopped = append(k.stopped, ds[0].State)
			return nil, syscall.ESRCH
		}
		return nil, syscall.EOPNOTSUPP
	}
}

func TestConnReads(t *testing.T) {
	k := &fakeKernel{
		svcs: []Service{{Key: web, PEName: "sip"}, {Key: fwmark}},
		dests: map[Key][]genetlink.Message{
			web: {destMessage(t, netip.MustParseAddr("10.0.0.21"), AFInet, true, false, true)},
		},
	}
	c := newTestConn(&kernelSock{answer: k.answer(t)}, 10, 1<<20)

	svcs, err := c.Services()
	if err != nil || len(svcs) != 2 || svcs[0].Key != web || svcs[0].PEName != "sip" || svcs[1].Key != fwmark {
		t.Fatalf("Services: %+v, %v", svcs, err)
	}
	ds, err := c.Dests(web)
	if err != nil || len(ds) != 1 || ds[0].Addr != netip.MustParseAddr("10.0.0.21") || ds[0].Weight != 3 {
		t.Errorf("Dests: %+v, %v", ds, err)
	}
	if ds, err := c.Dests(fwmark); err != nil || len(ds) != 0 {
		t.Errorf("Dests of a service without any: %+v, %v", ds, err)
	}
	s, err := c.Service(fwmark)
	if err != nil || s.Key != fwmark {
		t.Errorf("Service: %+v, %v", s, err)
	}
	// A missing service is the bare errno, for callers to test and word.
	if _, err := c.Service(web6); err != syscall.ESRCH {
		t.Errorf("missing service: %#v, want ESRCH", err)
	}
	if want := []Key{web, fwmark, fwmark, web6}; !slices.Equal(k.keys, want) {
		t.Errorf("requests named %v, want %v", k.keys, want)
	}
}

func TestConnDaemons(t *testing.T) {
	k := &fakeKernel{daemons: []Daemon{{State: 2, Interface: "eth0", SyncID: 7, Group: netip.MustParseAddr("224.0.0.81")}}}
	c := newTestConn(&kernelSock{answer: k.answer(t)}, 10, 1<<20)
	ds, err := c.Daemons()
	if err != nil || len(ds) != 1 || ds[0] != k.daemons[0] {
		t.Errorf("Daemons: %+v, %v", ds, err)
	}
	start := Daemon{State: 1, Interface: "eth1", SyncID: 9}
	if err := c.StartDaemon(start); err != nil {
		t.Errorf("StartDaemon: %v", err)
	}
	if err := c.StopDaemon(2); err != syscall.ESRCH {
		t.Errorf("StopDaemon of none: %#v, want the bare ESRCH", err)
	}
	if len(k.started) != 1 || k.started[0] != start || !slices.Equal(k.stopped, []uint32{2}) {
		t.Errorf("started %+v stopped %v", k.started, k.stopped)
	}
}
