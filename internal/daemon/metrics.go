package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/director-lb/director/checks"
	"github.com/director-lb/director/internal/control"
	"github.com/director-lb/director/ipvs"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics is the daemon's own registry: no global state, so tests and
// several daemons in one process do not collide.
type metrics struct {
	reg *prometheus.Registry

	reconcileSeconds prometheus.Histogram
	reconcileErrors  prometheus.Counter
	ipvsWrites       *prometheus.CounterVec
	checkSeconds     prometheus.Histogram
	checkResults     *prometheus.CounterVec
	checkLateReads   prometheus.Counter
	checkLag         prometheus.Histogram
	ec2Seconds       *prometheus.HistogramVec
	ec2Errors        *prometheus.CounterVec
}

func newMetrics(d *Daemon) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		reconcileSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "director_ipvs_reconcile_duration_seconds",
			Help:    "Time of one pass of the IPVS reconciler.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}),
		reconcileErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "director_ipvs_reconcile_errors_total",
			Help: "Failed kernel calls during IPVS reconciliation.",
		}),
		ipvsWrites: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "director_ipvs_writes_total",
			Help: "IPVS table writes by kind; kind=repaired counts writes that undid drift.",
		}, []string{"kind"}),
	}
	m.checkSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "director_check_duration_seconds",
		Help:    "Latency of health-check attempts.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12),
	})
	m.checkResults = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "director_check_results_total",
		Help: "Health-check attempts by result (ok, fail, timeout; discounted: an attempt blamed on the checker running late, counted neither way).",
	}, []string{"result"})
	m.checkLateReads = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "director_check_answers_read_late_total",
		Help: "Health-check answers the kernel received before the deadline but the checker read after it (it ran late); judged as received, not as timeouts.",
	})
	m.checkLag = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "director_check_lag_seconds",
		Help:    "How late health-check attempts started after they fell due: the checker's own scheduling lag.",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 8),
	})
	m.ec2Seconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "director_ec2_call_duration_seconds",
		Help:    "Latency of EC2 API calls, by operation.",
		Buckets: prometheus.ExponentialBuckets(0.01, 2, 10),
	}, []string{"operation"})
	m.ec2Errors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "director_ec2_call_errors_total",
		Help: "EC2 API calls that failed, by operation.",
	}, []string{"operation"})
	m.reg.MustRegister(m.ec2Seconds, m.ec2Errors, m.checkSeconds, m.checkResults, m.checkLateReads, m.checkLag, m.reconcileSeconds, m.reconcileErrors, m.ipvsWrites, &stateCollector{d: d},
		prometheus.NewGoCollector())
	bi := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "director_build_info",
		Help:        "Build information; always 1.",
		ConstLabels: prometheus.Labels{"version": d.version, "goversion": runtime.Version()},
	})
	bi.Set(1)
	m.reg.MustRegister(bi)
	return m
}

// serve exposes the registry on addr until ctx ends.
func (m *metrics) serve(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics listener: %w", err)
	}
	return m.serveOn(ctx, ln)
}

// serveOn exposes the registry on ln until ctx ends.
func (m *metrics) serveOn(ctx context.Context, ln net.Listener) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	srv := metricsServer(mux)
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// metricsServer serves h with every limit set: the endpoint may face a
// network, and a client that sends slowly, never reads its answer, idles or
// sends huge headers must not hold a connection or memory for ever. A scrape
// is one small GET answered in well under WriteTimeout.
func metricsServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
}

var (
	descState = prometheus.NewDesc("director_vrrp_state",
		"1 for the state each VRRP instance is in, 0 for the others.", []string{"vrrp_instance", "state"}, nil)
	descPriority = prometheus.NewDesc("director_vrrp_priority",
		"Current priority of each VRRP instance.", []string{"vrrp_instance"}, nil)
	descTransitions = prometheus.NewDesc("director_vrrp_transitions_total",
		"State changes of each VRRP instance.", []string{"vrrp_instance"}, nil)
	descSent = prometheus.NewDesc("director_vrrp_adverts_sent_total",
		"Advertisements sent.", []string{"vrrp_instance"}, nil)
	descRecv = prometheus.NewDesc("director_vrrp_adverts_received_total",
		"Advertisements received and accepted for processing.", []string{"vrrp_instance"}, nil)
	descDrops = prometheus.NewDesc("director_vrrp_adverts_dropped_total",
		"Advertisements dropped, by reason.", []string{"vrrp_instance", "reason"}, nil)
	descWeight = prometheus.NewDesc("director_real_server_weight",
		"Weight of each real server: configured and current.", []string{"service", "real_server", "kind"}, nil)
	descHealth = prometheus.NewDesc("director_real_server_up",
		"1 while a real server's checks pass, 0 while they fail (absent before the first result).", []string{"service", "real_server"}, nil)
	descQuorum = prometheus.NewDesc("director_service_quorum_lost",
		"1 while a service is below its quorum (the sorry server is in).", []string{"service"}, nil)
	descPeerMatch = prometheus.NewDesc("director_peer_config_match",
		"1 while the peer's configuration hash equals ours, 0 while it differs (absent before the peer is heard).", nil, nil)
	descPeerContact = prometheus.NewDesc("director_peer_last_contact_timestamp_seconds",
		"When the peer was last heard, either direction.", nil, nil)
	descPeerSyncs = prometheus.NewDesc("director_peer_syncs_total",
		"Syncs with the peer by result: ok and failed (sent by us), received.", []string{"result"}, nil)
	descRegistered = prometheus.NewDesc("director_registered_real_servers",
		"Real servers that registered themselves, per service.", []string{"service"}, nil)
	descAuthFailures = prometheus.NewDesc("director_api_auth_failures_total",
		"Requests to the pair API that failed to authenticate (wrong or missing token or certificate).", nil, nil)
	descThrottled = prometheus.NewDesc("director_api_throttled_total",
		"Requests to the pair API turned away (429) because their address failed to authenticate too often.", nil, nil)
	descBGPUp = prometheus.NewDesc("director_bgp_session_established",
		"1 while the BGP session with a peer is established, 0 otherwise.", []string{"peer"}, nil)
	descBGPUptime = prometheus.NewDesc("director_bgp_session_uptime_seconds",
		"How long the BGP session has been established (0 while it is not).", []string{"peer"}, nil)
	descBGPSent = prometheus.NewDesc("director_bgp_prefixes_sent",
		"Routes announced to the peer now.", []string{"peer"}, nil)
	descBGPFlaps = prometheus.NewDesc("director_bgp_session_flaps_total",
		"Transitions of the session to established since the daemon started.", []string{"peer"}, nil)
	descBFDUp = prometheus.NewDesc("director_bfd_session_up",
		"1 while the BFD session to the peer is up (absent without BFD).", []string{"peer"}, nil)
	descVIPAnnounced = prometheus.NewDesc("director_routing_vip_announced",
		"1 while a routed VIP is announced (or installed in the table), 0 while withdrawn.", []string{"vip"}, nil)
	descNodeDrained = prometheus.NewDesc("director_routing_node_drained",
		"1 while the node is drained (drain-node, or stopping), 0 while serving.", nil, nil)
)

var vrrpStates = []string{"INIT", "BACKUP", "MASTER", "FAULT", "STOPPED"}

// stateCollector reads the daemon's state at scrape time, so counters are
// never copied twice and a scrape always sees the live values.
type stateCollector struct{ d *Daemon }

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descState, descPriority, descTransitions, descSent, descRecv, descDrops, descWeight, descHealth, descQuorum,
		descPeerMatch, descPeerContact, descPeerSyncs, descRegistered, descAuthFailures, descThrottled,
		descBGPUp, descBGPUptime, descBGPSent, descBGPFlaps, descBFDUp, descVIPAnnounced, descNodeDrained} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.d.State()
	for _, in := range st.Instances {
		for _, s := range vrrpStates {
			v := 0.0
			if in.State == s {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, v, in.Name, s)
		}
		ch <- prometheus.MustNewConstMetric(descPriority, prometheus.GaugeValue, float64(in.Priority), in.Name)
		ch <- prometheus.MustNewConstMetric(descTransitions, prometheus.CounterValue, float64(in.Transitions), in.Name)
		ch <- prometheus.MustNewConstMetric(descSent, prometheus.CounterValue, float64(in.AdvertsSent), in.Name)
		ch <- prometheus.MustNewConstMetric(descRecv, prometheus.CounterValue, float64(in.AdvertsRecv), in.Name)
		for r, n := range in.Drops {
			ch <- prometheus.MustNewConstMetric(descDrops, prometheus.CounterValue, float64(n), in.Name, r)
		}
	}
	if p := st.Peer; p != nil {
		if p.PeerHash != "" {
			ch <- prometheus.MustNewConstMetric(descPeerMatch, prometheus.GaugeValue, b2f(!p.HashMismatch))
		}
		if !p.LastContact.IsZero() {
			ch <- prometheus.MustNewConstMetric(descPeerContact, prometheus.GaugeValue, float64(p.LastContact.UnixNano())/1e9)
		}
		ch <- prometheus.MustNewConstMetric(descPeerSyncs, prometheus.CounterValue, float64(p.Contacts), "ok")
		ch <- prometheus.MustNewConstMetric(descPeerSyncs, prometheus.CounterValue, float64(p.Failures), "failed")
		ch <- prometheus.MustNewConstMetric(descPeerSyncs, prometheus.CounterValue, float64(p.Received), "received")
	}
	if r := st.Routing; r != nil {
		collectRouting(ch, r)
	}
	c.d.mu.Lock()
	guard := c.d.auth
	c.d.mu.Unlock()
	if guard != nil {
		gs := guard.Stats()
		ch <- prometheus.MustNewConstMetric(descAuthFailures, prometheus.CounterValue, float64(gs.Failures))
		ch <- prometheus.MustNewConstMetric(descThrottled, prometheus.CounterValue, float64(gs.Throttled))
	}
	for _, s := range st.Services {
		ch <- prometheus.MustNewConstMetric(descQuorum, prometheus.GaugeValue, b2f(s.QuorumLost), s.Name)
		registered := 0
		for _, r := range s.RealServers {
			if r.Registered {
				registered++
			}
		}
		ch <- prometheus.MustNewConstMetric(descRegistered, prometheus.GaugeValue, float64(registered), s.Name)
		for _, r := range s.RealServers {
			if r.Health == "up" || r.Health == "down" {
				ch <- prometheus.MustNewConstMetric(descHealth, prometheus.GaugeValue, b2f(r.Health == "up"), s.Name, r.Address)
			}
			ch <- prometheus.MustNewConstMetric(descWeight, prometheus.GaugeValue, float64(r.ConfiguredWeight), s.Name, r.Address, "configured")
			ch <- prometheus.MustNewConstMetric(descWeight, prometheus.GaugeValue, float64(r.Weight), s.Name, r.Address, "current")
		}
	}
}

// collectRouting reports routed mode: each session and VIP, the drain.
func collectRouting(ch chan<- prometheus.Metric, r *control.RoutingState) {
	ch <- prometheus.MustNewConstMetric(descNodeDrained, prometheus.GaugeValue, b2f(r.Drain != "serving"))
	for _, v := range r.VIPs {
		ch <- prometheus.MustNewConstMetric(descVIPAnnounced, prometheus.GaugeValue, b2f(v.Announced), v.Addr.String())
	}
	for _, s := range r.Sessions {
		peer := s.Peer.String()
		up := s.State == "established"
		ch <- prometheus.MustNewConstMetric(descBGPUp, prometheus.GaugeValue, b2f(up), peer)
		uptime := 0.0
		if up && !s.Since.IsZero() {
			uptime = time.Since(s.Since).Seconds()
		}
		ch <- prometheus.MustNewConstMetric(descBGPUptime, prometheus.GaugeValue, uptime, peer)
		ch <- prometheus.MustNewConstMetric(descBGPSent, prometheus.GaugeValue, float64(s.PrefixesSent), peer)
		ch <- prometheus.MustNewConstMetric(descBGPFlaps, prometheus.CounterValue, float64(s.Flaps), peer)
		if s.BFD != "" {
			ch <- prometheus.MustNewConstMetric(descBFDUp, prometheus.GaugeValue, b2f(s.BFD == "up"), peer)
		}
	}
}

// checkResult records one health-check attempt.
func (m *metrics) checkResult(r checks.Result) {
	m.checkSeconds.Observe(r.Latency.Seconds())
	m.checkLag.Observe(r.Lag.Seconds())
	if r.ReadLate {
		m.checkLateReads.Inc()
	}
	switch {
	case r.Discounted:
		m.checkResults.WithLabelValues("discounted").Inc()
	case r.OK:
		m.checkResults.WithLabelValues("ok").Inc()
	case r.TimedOut:
		m.checkResults.WithLabelValues("timeout").Inc()
	default:
		m.checkResults.WithLabelValues("fail").Inc()
	}
}

// ec2Call records one EC2 API call.
func (m *metrics) ec2Call(op string, took time.Duration, err error) {
	m.ec2Seconds.WithLabelValues(op).Observe(took.Seconds())
	if err != nil {
		m.ec2Errors.WithLabelValues(op).Inc()
	}
}

// observe records one reconcile pass.
func (m *metrics) observe(res ipvs.Result, took time.Duration, err error) {
	m.reconcileSeconds.Observe(took.Seconds())
	m.reconcileErrors.Add(float64(res.Errors))
	for kind, n := range map[string]int{"created": res.Created, "updated": res.Updated, "deleted": res.Deleted, "drained": res.Drained, "repaired": res.Repaired} {
		m.ipvsWrites.WithLabelValues(kind).Add(float64(n))
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
