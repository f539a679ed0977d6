package register

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"sync/atomic"

	"github.com/director-lb/director/internal/apiauth"
)

// Pool is what a service accepts from self-registering real servers.
type Pool struct {
	Service string // service name
	// Port is the real-server port required (for DSR, the service port);
	// 0 allows any port 1..65535.
	Port int
	// Allowed lists the addresses a registration may use; empty refuses all.
	Allowed []netip.Prefix
	// MaxWeight caps the weight; 0 means DefaultMaxWeight.
	MaxWeight int
	// Family is 4 or 6, the address family the service uses.
	Family int
}

// DefaultMaxWeight caps the weight when a pool sets none.
const DefaultMaxWeight = 100

// Registration is a validated request handed to the Backend.
type Registration struct {
	Service string
	Addr    netip.AddrPort
	Weight  int
}

// ErrRefused is what a Backend wraps when it refuses a request for a
// reason the caller should read (the pool at its cap, a newer decision for
// the same server): the caller gets a 409 that says so, not a 500.
var ErrRefused = errors.New("refused")

// Backend applies validated requests (the daemon persists and replicates them).
type Backend interface {
	Register(r Registration) error
	Deregister(service string, ap netip.AddrPort) error
}

// Handler serves POST /v1/register and POST /v1/deregister.
type Handler struct {
	token atomic.Pointer[apiauth.Token] // swapped by SetToken while requests run
	pools func() map[string]Pool
	b     Backend
	log   *slog.Logger
	// OnAuthFailure, if set, hears of each request with a missing or
	// wrong token (the daemon's throttle, which logs a sample of them);
	// otherwise each is logged here. Set it before serving.
	OnAuthFailure func(*http.Request)
}

// New returns a handler accepting the bearer token (at least apiauth.MinTokenLen
// bytes). pools is called per request so that a reload takes effect at once.
// A nil log discards.
func New(token string, pools func() map[string]Pool, b Backend, log *slog.Logger) (*Handler, error) {
	if pools == nil {
		return nil, errors.New("register: nil pools function")
	}
	if b == nil {
		return nil, errors.New("register: nil backend")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{pools: pools, b: b, log: log}
	if err := h.SetToken(token); err != nil {
		return nil, err
	}
	return h, nil
}

// SetToken replaces the accepted token; on error the old one stays.
func (h *Handler) SetToken(token string) error {
	th, err := apiauth.NewToken(token)
	if err != nil {
		return fmt.Errorf("register: %w", err)
	}
	h.token.Store(&th)
	return nil
}

// ServeHTTP routes, authenticates, validates and applies one request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var register bool
	switch r.URL.Path {
	case "/v1/register":
		register = true
	case "/v1/deregister":
	default:
		writeError(w, http.StatusNotFound, "", "no such endpoint")
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "", "use POST")
		return
	}
	if !h.authorized(r) {
		// Never log the presented token: it may be a near-miss of the real one.
		if h.OnAuthFailure != nil {
			h.OnAuthFailure(r)
		} else {
			h.log.Warn("register: refused unauthenticated request",
				"remote", r.RemoteAddr, "path", r.URL.Path)
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="director"`)
		writeError(w, http.StatusUnauthorized, "", "missing or wrong bearer token")
		return
	}

	req, err := DecodeRequest(http.MaxBytesReader(w, r.Body, MaxBodySize))
	if err != nil {
		writeFieldError(w, err)
		return
	}
	pool, ok := h.pools()[req.Service]
	if !ok {
		writeError(w, http.StatusNotFound, "service",
			fmt.Sprintf("service %q does not accept registrations", req.Service))
		return
	}
	reg, err := validate(req, pool, register)
	if err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			writeFieldError(w, err)
		} else {
			h.log.Error("register: pool misconfigured", "service", req.Service, "err", err)
			writeError(w, http.StatusInternalServerError, "", err.Error())
		}
		return
	}

	status := "registered"
	if register {
		err = h.b.Register(reg)
	} else {
		status = "deregistered"
		err = h.b.Deregister(reg.Service, reg.Addr)
	}
	if errors.Is(err, ErrRefused) {
		h.log.Warn("register: refused", "service", reg.Service, "addr", reg.Addr, "remote", r.RemoteAddr, "err", err)
		writeError(w, http.StatusConflict, "service", err.Error())
		return
	}
	if err != nil {
		h.log.Error("register: backend refused", "op", status, "service", reg.Service,
			"addr", reg.Addr, "remote", r.RemoteAddr, "err", err)
		writeError(w, http.StatusInternalServerError, "", err.Error())
		return
	}
	h.log.Info("register: real server "+status, "service", reg.Service,
		"addr", reg.Addr, "weight", reg.Weight, "remote", r.RemoteAddr)
	resp := response{Status: status, Service: reg.Service,
		Address: reg.Addr.Addr().String(), Port: int(reg.Addr.Port())}
	if register {
		resp.Weight = &reg.Weight
	}
	writeJSON(w, http.StatusOK, resp)
}

// authorized checks "Authorization: Bearer <token>"; the scheme is
// case-insensitive per RFC 6750.
func (h *Handler) authorized(r *http.Request) bool {
	token, ok := apiauth.Bearer(r.Header.Get("Authorization"))
	return ok && h.token.Load().Matches(token)
}

// validate checks a decoded request against its service's pool.
func validate(req Request, p Pool, register bool) (Registration, error) {
	if p.Family != 4 && p.Family != 6 {
		return Registration{}, fmt.Errorf("pool for service %q has family %d, want 4 or 6", req.Service, p.Family)
	}
	addr, err := netip.ParseAddr(req.Address)
	if err != nil {
		return Registration{}, fieldErr("address", "not an IP address")
	}
	if addr.Zone() != "" {
		return Registration{}, fieldErr("address", "must not carry a zone")
	}
	// An IPv4-mapped IPv6 address is IPv6 to IPVS; refusing it avoids two
	// spellings of one server.
	if fam := family(addr); fam != p.Family {
		return Registration{}, fieldErr("address", "is IPv%d but service %q uses IPv%d", fam, req.Service, p.Family)
	}
	if !allowed(addr, p.Allowed) {
		return Registration{}, fieldErr("address", "%s is not allowed for service %q", addr, req.Service)
	}
	if p.Port != 0 && req.Port != p.Port {
		return Registration{}, fieldErr("port", "must be %d for service %q", p.Port, req.Service)
	}
	if req.Port < 1 || req.Port > 65535 {
		return Registration{}, fieldErr("port", "must be 1..65535")
	}
	reg := Registration{Service: req.Service, Addr: netip.AddrPortFrom(addr, uint16(req.Port))}
	if !register {
		if req.Weight != nil {
			return Registration{}, fieldErr("weight", "not accepted by deregister")
		}
		return reg, nil
	}
	maxW := p.MaxWeight
	if maxW == 0 {
		maxW = DefaultMaxWeight
	}
	reg.Weight = 1
	if req.Weight != nil {
		reg.Weight = *req.Weight
	}
	if reg.Weight < 0 || reg.Weight > maxW {
		return Registration{}, fieldErr("weight", "must be 0..%d", maxW)
	}
	return reg, nil
}

func family(a netip.Addr) int {
	if a.Is4() {
		return 4
	}
	return 6
}

func allowed(a netip.Addr, prefixes []netip.Prefix) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

type response struct {
	Status  string `json:"status"`
	Service string `json:"service"`
	Address string `json:"address"`
	Port    int    `json:"port"`
	Weight  *int   `json:"weight,omitempty"`
}

type errorResponse struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

func writeFieldError(w http.ResponseWriter, err error) {
	var fe *FieldError
	if errors.As(err, &fe) {
		writeError(w, http.StatusBadRequest, fe.Field, fe.Error())
		return
	}
	writeError(w, http.StatusBadRequest, "body", err.Error())
}

func writeError(w http.ResponseWriter, code int, field, msg string) {
	writeJSON(w, code, errorResponse{Error: msg, Field: field})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	// The status line is already sent; a failed write only means the client left.
	_ = json.NewEncoder(w).Encode(v)
}
