package ec2fake

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"time"
)

// Seed is the JSON form of a region's starting state, for cmd/ec2fake.
type Seed struct {
	Instances []Instance `json:"instances"`
	Addresses []Address  `json:"addresses"`
	// Secondary maps secondary private IPs to the ENI holding them.
	Secondary map[netip.Addr]string `json:"secondary"`
	// Associations maps allocation IDs to the private IP they point at.
	Associations map[string]netip.Addr `json:"associations"`
}

// LoadSeed decodes a Seed, rejecting unknown fields.
func LoadSeed(r io.Reader) (Seed, error) {
	var s Seed
	d := json.NewDecoder(r)
	d.DisallowUnknownFields()
	if err := d.Decode(&s); err != nil {
		return Seed{}, fmt.Errorf("ec2fake: decode seed: %w", err)
	}
	return s, nil
}

// FromSeed builds a Fake from a Seed.
func FromSeed(opt Options, s Seed) (*Fake, error) {
	return New(opt, s.Instances, s.Addresses, s.Secondary, s.Associations)
}

// State is a snapshot of the authoritative (not lagged) state.
type State struct {
	// IPs maps every private IP to the ENI holding it ("" if none).
	IPs map[netip.Addr]string `json:"ips"`
	// Associations maps allocation IDs to their ENI and private IP.
	Associations map[string]AssociationState `json:"associations"`
	Calls        int                         `json:"calls"`
}

// AssociationState is where one Elastic IP points.
type AssociationState struct {
	AssociationID string     `json:"association_id,omitempty"`
	ENI           string     `json:"eni,omitempty"`
	PrivateIP     netip.Addr `json:"private_ip,omitzero"`
}

// Snapshot returns the current state.
func (f *Fake) Snapshot() State {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := State{IPs: map[netip.Addr]string{}, Associations: map[string]AssociationState{}, Calls: len(f.calls)}
	for ip, h := range f.ips {
		s.IPs[ip] = h.current()
	}
	for id, a := range f.addrs {
		c := a.assoc.current()
		s.Associations[id] = AssociationState{AssociationID: c.ID, ENI: c.ENI, PrivateIP: c.PrivateIP}
	}
	return s
}

// adminFault is the JSON form of Fault for the admin API.
type adminFault struct {
	Action      string `json:"action"`
	AccessKey   string `json:"access_key"`
	Status      int    `json:"status"`
	Code        string `json:"code"`
	Message     string `json:"message"`
	Body        string `json:"body"`
	Count       int    `json:"count"`
	AfterCommit bool   `json:"after_commit"`
}

type adminDeny struct {
	AccessKey string   `json:"access_key"`
	Actions   []string `json:"actions"`
}

type adminTiming struct {
	Lag        string `json:"lag"`
	MinLatency string `json:"min_latency"`
	MaxLatency string `json:"max_latency"`
}

// Admin returns a small JSON control API for a fake run as a server (the
// lab drives it with curl):
//
//	GET    /state    the Snapshot
//	GET    /calls    every answered EC2 call
//	POST   /fault    inject a fault {"action","status","code","message","body","count","after_commit","access_key"}
//	DELETE /fault    clear all faults
//	POST   /deny     {"access_key":"","actions":["AssociateAddress"]}
//	POST   /allow    the same shape, undoes /deny
//	POST   /timing   {"lag":"300ms","min_latency":"50ms","max_latency":"200ms"} (empty fields unchanged)
//	POST   /move     {"ip":"10.0.0.100","eni":"eni-..."} reassign as another actor would
func (f *Fake) Admin() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /state", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, f.Snapshot()) })
	mux.HandleFunc("GET /calls", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, f.Calls()) })
	mux.HandleFunc("POST /fault", func(w http.ResponseWriter, r *http.Request) {
		var a adminFault
		if !readJSON(w, r, &a) {
			return
		}
		ft := Fault{Action: a.Action, AccessKey: a.AccessKey, Status: a.Status, Code: a.Code, Message: a.Message, Count: a.Count, AfterCommit: a.AfterCommit}
		if a.Body != "" {
			ft.Body = []byte(a.Body)
		}
		f.InjectFault(ft)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /fault", func(w http.ResponseWriter, r *http.Request) {
		f.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	})
	deny := func(allow bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			var d adminDeny
			if !readJSON(w, r, &d) {
				return
			}
			if allow {
				f.Allow(d.AccessKey, d.Actions...)
			} else {
				f.Deny(d.AccessKey, d.Actions...)
			}
			w.WriteHeader(http.StatusNoContent)
		}
	}
	mux.HandleFunc("POST /deny", deny(false))
	mux.HandleFunc("POST /allow", deny(true))
	mux.HandleFunc("POST /timing", func(w http.ResponseWriter, r *http.Request) {
		var t adminTiming
		if !readJSON(w, r, &t) {
			return
		}
		parse := func(s string, cur time.Duration) (time.Duration, error) {
			if s == "" {
				return cur, nil
			}
			return time.ParseDuration(s)
		}
		f.mu.Lock()
		lag, lo, hi := f.lag, f.lat[0], f.lat[1]
		f.mu.Unlock()
		var errs [3]error
		lag, errs[0] = parse(t.Lag, lag)
		lo, errs[1] = parse(t.MinLatency, lo)
		hi, errs[2] = parse(t.MaxLatency, hi)
		for _, err := range errs {
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
		}
		f.SetLag(lag)
		f.SetLatency(lo, hi)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /move", func(w http.ResponseWriter, r *http.Request) {
		var m struct {
			IP  netip.Addr `json:"ip"`
			ENI string     `json:"eni"`
		}
		if !readJSON(w, r, &m) {
			return
		}
		if err := f.MoveIP(m.IP, m.ENI); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	d := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		http.Error(w, "bad JSON: "+err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}
