// Package control is the daemon's local control socket: a small HTTP/JSON
// API on a unix socket that only root may use. The director commands
// (state, failback, failover) are its clients.
package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/director-lb/director/internal/peer"
	"github.com/director-lb/director/internal/privdir"
	"github.com/director-lb/director/internal/routing"
)

// DefaultSocket is where the daemon listens unless configured otherwise.
const DefaultSocket = "/run/director/director.sock"

// Backend is what the daemon exposes to the socket.
type Backend interface {
	State() State
	// Failback and Failover act on one instance, or on all when name is "".
	Failback(ctx context.Context, name string) error
	Failover(ctx context.Context, name string) error
	// Reload re-reads the configuration file; with dryRun it only reports
	// the changes it would apply.
	Reload(ctx context.Context, dryRun bool) ([]string, error)
	// RunningConfig is the configuration in force, as YAML.
	RunningConfig() ([]byte, error)
	// RealServer drains, disables, enables or re-weights a real server
	// ("addr:port" in every service, or "service/addr:port").
	RealServer(ctx context.Context, target, action string, weight int) error
	// DrainNode withdraws (or de-prefers) this node's routes in routed
	// mode and starts watching its traffic leave; state shows the
	// progress. UndrainNode announces them again.
	DrainNode(ctx context.Context) (routing.DrainProgress, error)
	UndrainNode(ctx context.Context) error
}

// State is the daemon's state as `director state` shows it.
type State struct {
	Version   string          `json:"version"`
	Config    string          `json:"config"`
	Started   time.Time       `json:"started"`
	Instances []InstanceState `json:"instances"`
	// SyncGroups are the VRRP sync groups, in configuration order.
	SyncGroups []SyncGroupState `json:"sync_groups,omitempty"`
	Services   []ServiceState   `json:"services,omitempty"`
	// Node is this director's name to its peer; ConfigHash is its
	// config.PairHash; Peer is the pairing, absent without api.peer.
	Node       string       `json:"node,omitempty"`
	ConfigHash string       `json:"config_hash,omitempty"`
	Peer       *peer.Status `json:"peer,omitempty"`
	// Routing is routed mode; absent without a routing section.
	Routing *RoutingState `json:"routing,omitempty"`
}

// RoutingState is routed mode: the VIPs as announced, the BGP sessions,
// the node's drain.
type RoutingState struct {
	Mode string `json:"mode"` // bgp or table
	// Drain is serving, withdrawn or depreferred (drain-node), or
	// stopping.
	Drain         string                 `json:"drain"`
	DrainProgress *routing.DrainProgress `json:"drain_progress,omitempty"`
	VIPs          []routing.VIPView      `json:"vips"`
	Sessions      []routing.Session      `json:"sessions,omitempty"`
	// LastError is the last failed announcement, while it stands.
	LastError string `json:"last_error,omitempty"`
}

// InstanceState is one VRRP instance.
type InstanceState struct {
	Name           string            `json:"name"`
	VRID           uint8             `json:"vrid"`
	Interface      string            `json:"interface"`
	State          string            `json:"state"`
	Priority       uint8             `json:"priority"`
	Master         string            `json:"master,omitempty"`
	LastTransition time.Time         `json:"last_transition"`
	LastReason     string            `json:"last_reason"`
	Transitions    uint64            `json:"transitions"`
	AdvertsSent    uint64            `json:"adverts_sent"`
	AdvertsRecv    uint64            `json:"adverts_received"`
	Drops          map[string]uint64 `json:"drops,omitempty"`
	Cloud          *CloudState       `json:"cloud,omitempty"`
	// Tracks are what the instance's priority follows, in its
	// configuration's order.
	Tracks []TrackState `json:"tracks,omitempty"`
}

// TrackState is one tracked object as an instance applies it.
type TrackState struct {
	Kind string `json:"kind"` // service, real_server, script, file, process, interface
	Name string `json:"name"`
	// State is up or down; init before its first result; fault when it
	// puts the instance in FAULT.
	State string `json:"state"`
	// Result is the last result and why: "exit status 1", "timed out
	// after 1s", "value 3", "2 processes", "carrier down".
	Result string `json:"result,omitempty"`
	// Output is a script's last output, capped.
	Output string `json:"output,omitempty"`
	// Weight is the track's effective weight; Applied is what it adds to
	// the priority now; Fault says it puts the instance in FAULT.
	Weight  int  `json:"weight"`
	Reverse bool `json:"weight_reverse,omitempty"`
	Applied int  `json:"applied"`
	Fault   bool `json:"fault,omitempty"`
}

// SyncGroupState is one sync group: its one state and its members'.
type SyncGroupState struct {
	Name string `json:"name"`
	// State is FAULT if a member is, MASTER when all are, else BACKUP
	// (INIT or STOPPED while a member is).
	State string `json:"state"`
	// Gate is "open" while every member is master or ready to be, else
	// "hold": no member may be master.
	Gate    string            `json:"gate"`
	Members []SyncGroupMember `json:"members"`
}

// SyncGroupMember is a member as its group last heard it.
type SyncGroupMember struct {
	Name  string `json:"name"`
	State string `json:"state"`
	// Ready: a BACKUP that would be master but for its group.
	Ready bool `json:"ready,omitempty"`
}

// CloudState is an instance's EC2 mover.
type CloudState struct {
	InstanceID       string   `json:"instance_id"`
	ENI              string   `json:"eni"`
	Holding          bool     `json:"holding"`
	Verified         bool     `json:"verified"`
	MovesInProgress  int      `json:"moves_in_progress"`
	Moves            uint64   `json:"moves"`
	FailedMoves      uint64   `json:"failed_moves"`
	LastMoveDuration string   `json:"last_move_duration,omitempty"`
	LastError        string   `json:"last_error,omitempty"`
	PermissionErrors uint64   `json:"permission_errors"`
	Suspended        []string `json:"suspended,omitempty"`
}

// ServiceState is one IPVS service as configured.
type ServiceState struct {
	Name string `json:"name"`
	// Key is the virtual service; for a group, its first and how many
	// more ("TCP 10.0.0.100:80 +12"), with every one in Members.
	Key         string            `json:"key"`
	Members     []string          `json:"members,omitempty"`
	QuorumLost  bool              `json:"quorum_lost,omitempty"`
	Sorry       bool              `json:"sorry_server_in_use,omitempty"`
	RealServers []RealServerState `json:"real_servers"`
}

// RealServerState is one real server's configured and current weight.
type RealServerState struct {
	Address          string `json:"address"`
	ConfiguredWeight int    `json:"configured_weight"`
	Weight           int    `json:"weight"`
	Health           string `json:"health,omitempty"`
	Override         string `json:"override,omitempty"`
	Reason           string `json:"reason,omitempty"`
	// Registered is set for a real server that registered itself.
	Registered bool `json:"registered,omitempty"`
}

// Server serves a Backend on a unix socket.
type Server struct {
	path string
	b    Backend
	log  *slog.Logger
	srv  *http.Server
	ln   net.Listener
}

// Listen creates the socket (mode 0600 in a 0700 directory); a stale socket
// from a crashed daemon is replaced, a live one is an error. An existing
// directory must be root's and writable by nobody else.
func Listen(path string, b Backend, log *slog.Logger) (*Server, error) {
	if err := privdir.Ensure("control socket directory", filepath.Dir(path)); err != nil {
		return nil, err
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s: another director is running", path)
	}
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	s := &Server{path: path, b: b, log: log, ln: ln}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/state", s.state)
	mux.HandleFunc("POST /v1/failback", s.handover(b.Failback))
	mux.HandleFunc("POST /v1/failover", s.handover(b.Failover))
	mux.HandleFunc("POST /v1/reload", s.reload)
	mux.HandleFunc("GET /v1/config", s.config)
	mux.HandleFunc("POST /v1/realserver", s.realServer)
	mux.HandleFunc("POST /v1/node/drain", s.drainNode)
	mux.HandleFunc("POST /v1/node/undrain", s.undrainNode)
	s.srv = &http.Server{
		Handler:           rootOnly(mux),
		ConnContext:       withPeer,
		ReadHeaderTimeout: 5 * time.Second,
	}
	return s, nil
}

// Serve serves until Close.
func (s *Server) Serve() error {
	if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("control socket: %w", err)
	}
	return nil
}

// Close stops serving and removes the socket.
func (s *Server) Close() error {
	err := s.srv.Close()
	os.Remove(s.path)
	return err
}

type peerKey struct{}

// withPeer records the connecting process's uid (SO_PEERCRED), so that
// permissions do not rest on the file mode alone.
func withPeer(ctx context.Context, c net.Conn) context.Context {
	uid := -1
	if uc, ok := c.(*net.UnixConn); ok {
		if raw, err := uc.SyscallConn(); err == nil {
			raw.Control(func(fd uintptr) {
				if cred, err := syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED); err == nil {
					uid = int(cred.Uid)
				}
			})
		}
	}
	return context.WithValue(ctx, peerKey{}, uid)
}

func rootOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		uid, _ := r.Context().Value(peerKey{}).(int)
		if uid != 0 && uid != os.Geteuid() {
			writeErr(w, http.StatusForbidden, fmt.Errorf("permission denied: uid %d is not root", uid))
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (s *Server) state(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.b.State())
}

// ReloadResult is the reply to a reload.
type ReloadResult struct {
	DryRun  bool     `json:"dry_run"`
	Changes []string `json:"changes"`
}

func (s *Server) reload(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), maxWait)
	defer cancel()
	dry := r.URL.Query().Get("dry_run") == "1"
	changes, err := s.b.Reload(ctx, dry)
	if err != nil {
		writeErr(w, http.StatusConflict, err)
		return
	}
	writeJSON(w, http.StatusOK, ReloadResult{DryRun: dry, Changes: changes})
}

func (s *Server) realServer(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	weight := 0
	if v := q.Get("weight"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			writeErr(w, http.StatusBadRequest, fmt.Errorf("weight %q is not a number", v))
			return
		}
		weight = n
	}
	if err := s.b.RealServer(r.Context(), q.Get("target"), q.Get("action"), weight); err != nil {
		writeErr(w, http.StatusConflict, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"result": "ok"})
}

func (s *Server) drainNode(w http.ResponseWriter, r *http.Request) {
	p, err := s.b.DrainNode(r.Context())
	if err != nil {
		writeErr(w, http.StatusConflict, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (s *Server) undrainNode(w http.ResponseWriter, r *http.Request) {
	if err := s.b.UndrainNode(r.Context()); err != nil {
		writeErr(w, http.StatusConflict, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"result": "ok"})
}

func (s *Server) config(w http.ResponseWriter, r *http.Request) {
	b, err := s.b.RunningConfig()
	if err != nil {
		writeErr(w, http.StatusInternalServerError, err)
		return
	}
	w.Header().Set("Content-Type", "application/yaml")
	w.Write(b)
}

// maxWait bounds how long a handover request waits for its outcome.
const maxWait = 30 * time.Second

func (s *Server) handover(f func(context.Context, string) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), maxWait)
		defer cancel()
		name := r.URL.Query().Get("instance")
		if err := f(ctx, name); err != nil {
			writeErr(w, http.StatusConflict, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"result": "ok"})
	}
}

type errorBody struct {
	Error string `json:"error"`
}

func writeErr(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, errorBody{Error: err.Error()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
