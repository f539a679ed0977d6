package kaimport

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/director-lb/director/internal/config"
)

const mainConf = "/etc/keepalived/keepalived.conf"

// convertString converts one in-memory keepalived.conf.
func convertString(t *testing.T, src string, opts Options) ([]byte, Report, error) {
	t.Helper()
	return convertFS(memFS{mainConf: src}, mainConf, opts)
}

// load converts src, which must succeed, and loads the result with
// director's loader.
func load(t *testing.T, src string) (*config.Config, Report) {
	t.Helper()
	data, rep, err := convertString(t, src, testOptions)
	if err != nil {
		t.Fatalf("convert: %v\n%v", err, rep.Findings)
	}
	cfg, err := config.Parse("out.yaml", data)
	if err != nil {
		t.Fatalf("config.Parse: %v\n%s", err, data)
	}
	return cfg, rep
}

// find returns the first finding about keyword, or fails.
func find(t *testing.T, rep Report, keyword string) Finding {
	t.Helper()
	for _, f := range rep.Findings {
		if f.Keyword == keyword {
			return f
		}
	}
	t.Fatalf("no finding about %s in %v", keyword, rep.Findings)
	return Finding{}
}

const instance = `
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        192.0.2.10/24
    }
}
`

func TestMisspelledBlockIsAnError(t *testing.T) {
	for _, src := range []string{
		instance + "vrrp_instnace VI_2 {\n interface eth0\n}\n",
		instance + "virtual_server 192.0.2.10 80 {\n protocol TCP\n real_sever 192.0.2.20 80 {\n }\n}\n",
		"vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n virtual_ipadress {\n 192.0.2.10\n }\n}\n",
	} {
		data, rep, err := convertString(t, src, testOptions)
		if err == nil || data != nil {
			t.Errorf("converted despite a misspelled block:\n%s", src)
			continue
		}
		var f *Finding
		for i := range rep.Findings {
			if strings.Contains(rep.Findings[i].Msg, "unknown block") {
				f = &rep.Findings[i]
			}
		}
		if f == nil || f.Level != Error || !strings.Contains(f.Msg, "did you mean") || f.Pos.Line == 0 {
			t.Errorf("findings = %v, want an unknown-block error with a suggestion and a line", rep.Findings)
		}
	}
}

func TestUnknownSimpleKeywordIsAWarning(t *testing.T) {
	src := strings.Replace(instance, "interface eth0", "interface eth0\n    priorty 150", 1)
	cfg, rep := load(t, src)
	f := find(t, rep, "priorty")
	if f.Level != Warning || f.Pos != (Pos{File: mainConf, Line: 4}) || !strings.Contains(f.Msg, "did you mean priority?") {
		t.Errorf("finding = %v", f)
	}
	if cfg.Instances[0].Priority != 100 {
		t.Errorf("priority = %d, want the default 100", cfg.Instances[0].Priority)
	}
}

func TestUnsupportedKeywordsAreReported(t *testing.T) {
	cases := []struct {
		snippet, keyword string
		level            Level
		line             int
	}{
		{"notify_deleted /bin/d.sh", "notify_deleted", Warning, 4},
		{"track_bfd {\n b\n }", "track_bfd", Warning, 4},
		{"state MASTER", "state", Note, 4},
		{"use_ipvlan", "use_ipvlan", Warning, 4},
	}
	for _, c := range cases {
		src := strings.Replace(instance, "interface eth0", "interface eth0\n    "+c.snippet, 1)
		_, rep := load(t, src)
		if f := find(t, rep, c.keyword); f.Level != c.level || f.Pos.Line != c.line {
			t.Errorf("%s: finding = %v, want %v at line %d", c.keyword, f, c.level, c.line)
		}
	}
	top := []struct{ snippet, keyword string }{
		{"vrrp_sync_group G {\n group {\n VI_1\n }\n}", "vrrp_sync_group"}, // one member: left out
		{"virtual_server group G {\n real_server 192.0.2.20 80 {\n }\n}", "virtual_server"},
		{"virtual_server 192.0.2.10 80 {\n protocol TCP\n real_server 192.0.2.20 80 {\n HTTP_GET {\n url {\n path /\n regex_options extended\n }\n }\n }\n}", "regex_options"},
		{"virtual_server 192.0.2.10 80 {\n protocol TCP\n real_server 192.0.2.20 80 {\n BFD_CHECK {\n name b\n }\n }\n}", "BFD_CHECK"},
	}
	for _, c := range top {
		_, rep := load(t, instance+c.snippet+"\n")
		if f := find(t, rep, c.keyword); f.Level != Warning {
			t.Errorf("%s: finding = %v, want a warning", c.keyword, f)
		}
	}
}

func TestKeepalivedDefaultsAreWrittenOut(t *testing.T) {
	cfg, rep := load(t, instance+`
virtual_server 192.0.2.10 53 {
    persistence_timeout
    real_server 192.0.2.20 53 {
    }
}`)
	in := cfg.Instances[0]
	if in.Version != 2 || in.Priority != 100 || in.AdvertInterval.D() != time.Second || !in.PreemptEnabled() {
		t.Errorf("instance = version %d priority %d advert %s preempt %v; want keepalived's 2, 100, 1s, true",
			in.Version, in.Priority, in.AdvertInterval.D(), in.PreemptEnabled())
	}
	s := cfg.Services[0]
	if s.Protocol != "udp" || s.Forwarding != "nat" || s.Scheduler != "wlc" || s.Persistence.Timeout.D() != 6*time.Minute {
		t.Errorf("service = %s %s %s %s; want keepalived's udp, nat, wlc, 6m", s.Protocol, s.Forwarding, s.Scheduler, s.Persistence.Timeout.D())
	}
	if f := find(t, rep, "virtual_server"); f.Level != Warning || !strings.Contains(f.Msg, "UDP") {
		t.Errorf("missing protocol finding = %v", f)
	}
}

func TestInstanceConversion(t *testing.T) {
	cfg, rep := load(t, `
global_defs {
    vrrp_version 3
    vrrp_garp_master_repeat 2
    vrrp_garp_interval 0.1
    vrrp_garp_master_refresh 30
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 255
    advert_int 0.5
    nopreempt
    unicast_src_ip 192.0.2.1
    unicast_peer {
        192.0.2.2
        192.0.2.3
    }
    virtual_ipaddress {
        192.0.2.10/24
        192.0.2.11
    }
    notify /usr/local/bin/notify.sh
}
vrrp_instance VI_2 {
    interface eth1
    virtual_router_id 52
    version 2
    preempt_delay 2.5
    garp_master_repeat 7
    authentication {
        auth_type PASS
        auth_pass 0123456789
    }
    virtual_ipaddress {
        198.51.100.10
    }
}`)
	a, b := cfg.Instances[0], cfg.Instances[1]
	if a.Priority != 254 || a.Version != 3 || a.AdvertInterval.D() != 500*time.Millisecond || a.PreemptEnabled() {
		t.Errorf("VI_1 = priority %d version %d advert %s preempt %v", a.Priority, a.Version, a.AdvertInterval.D(), a.PreemptEnabled())
	}
	if a.Unicast == nil || a.Unicast.Source != "192.0.2.1" || strings.Join(a.Unicast.Peers, ",") != "192.0.2.2,192.0.2.3" {
		t.Errorf("VI_1 unicast = %+v", a.Unicast)
	}
	if strings.Join(a.VIPs, ",") != "192.0.2.10/24,192.0.2.11" || a.Notify != "/usr/local/bin/notify.sh" {
		t.Errorf("VI_1 vips %v notify %q", a.VIPs, a.Notify)
	}
	if a.GARP.Count != 2 || a.GARP.Interval.D() != 100*time.Millisecond || a.GARP.Refresh.D() != 30*time.Second {
		t.Errorf("VI_1 garp = %+v", a.GARP)
	}
	if b.Version != 2 || b.PreemptDelay.D() != 2500*time.Millisecond || b.AuthPass != "01234567" || b.GARP.Count != 7 {
		t.Errorf("VI_2 = version %d preempt_delay %s auth %q garp %d", b.Version, b.PreemptDelay.D(), b.AuthPass, b.GARP.Count)
	}
	if f := find(t, rep, "priority"); f.Level != Warning || f.Pos.Line != 11 {
		t.Errorf("priority 255 finding = %v", f)
	}
	if f := find(t, rep, "auth_pass"); f.Level != Note {
		t.Errorf("auth_pass truncation finding = %v", f)
	}
}

func TestAuthenticationWithVersion3IsDropped(t *testing.T) {
	src := strings.Replace(instance, "interface eth0", "interface eth0\n version 3\n authentication {\n auth_type PASS\n auth_pass x\n }", 1)
	cfg, rep := load(t, src)
	if cfg.Instances[0].AuthPass != "" {
		t.Errorf("auth_pass = %q on a version 3 instance", cfg.Instances[0].AuthPass)
	}
	if f := find(t, rep, "authentication"); f.Level != Warning {
		t.Errorf("finding = %v", f)
	}
}

func TestNotify(t *testing.T) {
	cases := []struct {
		line  string
		level Level
		ok    bool
	}{
		{`notify "/bin/notify.sh --all"`, Warning, true},
		{`notify /bin/notify.sh root`, Note, true},
		{`notify notify.sh`, Error, false},
	}
	for _, c := range cases {
		src := strings.Replace(instance, "interface eth0", "interface eth0\n "+c.line, 1)
		_, rep, err := convertString(t, src, testOptions)
		if (err == nil) != c.ok {
			t.Errorf("%s: err = %v", c.line, err)
		}
		if f := find(t, rep, "notify"); f.Level != c.level {
			t.Errorf("%s: finding = %v, want %v", c.line, f, c.level)
		}
	}
}

func TestChecksInheritAndShare(t *testing.T) {
	cfg, _ := load(t, instance+`
virtual_server 192.0.2.10 80 {
    protocol TCP
    delay_loop 7
    connect_timeout 4
    virtualhost vs.example.com
    real_server 192.0.2.20 80 {
        HTTP_GET {
            url {
                path /a
            }
        }
    }
    real_server 192.0.2.21 80 {
        retry 0
        HTTP_GET {
            url {
                path /a
            }
        }
    }
}
virtual_server 192.0.2.10 81 {
    protocol TCP
    delay_loop 7
    real_server 192.0.2.20 81 {
        TCP_CHECK {
        }
    }
    real_server 192.0.2.21 81 {
        TCP_CHECK {
        }
    }
}`)
	// Different retries: each real server keeps its own checks.
	s0 := cfg.Services[0]
	if len(s0.Checks) != 0 {
		t.Errorf("service 0 has shared checks although its servers differ: %+v", s0.Checks)
	}
	c0 := (*s0.RealServers[0].Checks)[0]
	c1 := (*s0.RealServers[1].Checks)[0]
	if c0.Type != "http" || c0.HTTP.Path != "/a" || c0.HTTP.Host != "vs.example.com" || c0.Timeout.D() != 4*time.Second ||
		c0.Interval.D() != 7*time.Second || c0.Retries != 1 || c0.RetryDelay.D() != 3*time.Second || !c0.RetryRefused ||
		c0.Rise != 1 || c0.Fall != 1 {
		t.Errorf("rs0 check = %+v %+v, want keepalived's timings, rise and fall 1", c0, c0.HTTP)
	}
	if c1.Retries != 0 || c1.Interval.D() != 7*time.Second || c1.RetryRefused {
		t.Errorf("rs1 check = %+v, want retries 0 and the service's interval", c1)
	}
	// Equal checks: written once, on the service.
	s1 := cfg.Services[1]
	if len(s1.Checks) != 1 || s1.Checks[0].Type != "tcp" || s1.Checks[0].Interval.D() != 7*time.Second || s1.Checks[0].RetryDelay.D() != time.Second {
		t.Errorf("service 1 checks = %+v, want one shared tcp check", s1.Checks)
	}
	for _, r := range s1.RealServers {
		if r.Checks != nil {
			t.Errorf("real server keeps its own checks beside the shared ones: %+v", r)
		}
	}
}

// keepalived's UDP_CHECK, PING_CHECK, SMTP_CHECK and FILE_CHECK, and the
// url options, become director checks that director's loader accepts.
func TestNewCheckersConvert(t *testing.T) {
	cfg, rep := load(t, instance+`
track_file rs_weight {
    file /etc/keepalived/rs-weight
    weight 5 reverse
}
track_file maint {
    file /etc/keepalived/maintenance
    weight 0
}
virtual_server 192.0.2.10 53 {
    protocol UDP
    delay_loop 2
    real_server 192.0.2.20 53 {
        UDP_CHECK {
            payload 00 01 ab
            require_reply 00 x1
            max_reply_length 512
            connect_timeout 1
        }
        PING_CHECK {
            connect_ip 192.0.2.120
            bindto 192.0.2.1
        }
        FILE_CHECK {
            track_file rs_weight
        }
        FILE_CHECK {
            track_file maint
            weight 0 reverse
        }
    }
}
virtual_server 192.0.2.10 25 {
    protocol TCP
    delay_loop 10
    real_server 192.0.2.21 25 {
        SMTP_CHECK {
            helo_name lb1.example.com
        }
    }
}
virtual_server 192.0.2.10 443 {
    protocol TCP
    delay_loop 10
    virtualhost vs.example.com
    real_server 192.0.2.22 443 {
        SSL_GET {
            http_protocol 1.0C
            sni_name tls.example.com
            url {
                path /health
                digest 9B3A0C85A887A256D6939DA88AABD8CD
                status_code 200 301-302
            }
            url {
                path /status
                virtualhost other.example.com
                regex "^OK"
                regex_no_match
            }
        }
    }
}`)
	udp := cfg.Services[0].RealServers[0]
	cs := cfg.Services[0].ChecksOf(&udp)
	if len(cs) != 4 {
		t.Fatalf("udp service checks: %+v", cs)
	}
	if s := cs[0].Spec; s.UDP.SendHex != "00 01 ab" || s.UDP.ExpectHex != "00 x1" || !s.UDP.RequireReply || s.UDP.MaxReplyLength != 512 ||
		s.Timeout != time.Second || s.Interval != 2*time.Second || s.Rise != 1 || s.Fall != 1 || s.Retries != 1 {
		t.Errorf("udp check %+v", s)
	}
	if s := cs[1].Spec; s.Type != "ping" || s.ConnectIP.String() != "192.0.2.120" || s.Source.String() != "192.0.2.1" || s.Timeout != 2*time.Second {
		t.Errorf("ping check %+v", s)
	}
	if f := cs[2].Spec.File; f.Path != "/etc/keepalived/rs-weight" || f.Weight != 5 || !f.Reverse {
		t.Errorf("file check from the track_file's weight: %+v", f)
	}
	if f := cs[3].Spec.File; f.Path != "/etc/keepalived/maintenance" || f.Weight != 0 || !f.Reverse {
		t.Errorf("file check with its own weight: %+v", f)
	}
	smtp := cfg.Services[1].ChecksOf(&cfg.Services[1].RealServers[0])
	if len(smtp) != 1 || smtp[0].Spec.SMTP.HeloName != "lb1.example.com" || smtp[0].Spec.Timeout != 5*time.Second {
		t.Errorf("smtp: %+v", smtp)
	}
	rs := cfg.Services[2].RealServers[0]
	https := cfg.Services[2].ChecksOf(&rs)
	if len(https) != 2 {
		t.Fatalf("one check per url, got %+v", https)
	}
	if h := https[0].Spec.HTTP; h.Path != "/health" || h.Digest != "9b3a0c85a887a256d6939da88aabd8cd" || h.Version != "1.0" ||
		h.SNI != "tls.example.com" || h.Host != "vs.example.com" || strings.Join(h.Status, " ") != "200 301-302" {
		t.Errorf("first url %+v", h)
	}
	if h := https[1].Spec.HTTP; h.Path != "/status" || h.Host != "other.example.com" || h.Body != "^OK" || !h.BodyNoMatch {
		t.Errorf("second url %+v", h)
	}
	if f := find(t, rep, "require_reply"); f.Level != Note {
		t.Errorf("require_reply: %v", f)
	}
	for _, f := range rep.Findings {
		if f.Level == Warning {
			t.Errorf("unexpected warning %v", f)
		}
	}
}

func TestCheckerConversionProblems(t *testing.T) {
	vs := func(body string) string {
		return instance + "virtual_server 192.0.2.10 80 {\n protocol TCP\n delay_loop 2\n real_server 192.0.2.20 80 {\n" + body + "\n }\n}\n"
	}
	// connect_timeout beyond delay_loop: the timeout fits the interval.
	cfg, rep := load(t, vs("TCP_CHECK {\n connect_timeout 5\n }"))
	if got := cfg.Services[0].Checks; len(got) != 0 {
		t.Errorf("service checks %+v", got)
	}
	if s := cfg.Services[0].RealServers[0]; (*s.Checks)[0].Spec.Timeout != 2*time.Second {
		t.Errorf("timeout %v", (*s.Checks)[0].Spec.Timeout)
	}
	if f := find(t, rep, "TCP_CHECK"); f.Level != Warning || !strings.Contains(f.Msg, "cut to 2s") {
		t.Errorf("finding %v", f)
	}
	// A FILE_CHECK naming no track_file block is not converted, as
	// keepalived ignores it.
	cfg, rep = load(t, vs("FILE_CHECK {\n track_file nope\n }"))
	if f := find(t, rep, "track_file"); f.Level != Warning || f.Pos.Line != 14 {
		t.Errorf("finding %v", f)
	}
	if s := cfg.Services[0]; len(s.Checks) != 0 || s.RealServers[0].Checks != nil {
		t.Errorf("checks %+v %+v, want none", s.Checks, s.RealServers[0].Checks)
	}
	// Options of another checker are warned about.
	_, rep = load(t, vs("TCP_CHECK {\n helo_name x\n }"))
	if f := find(t, rep, "helo_name"); f.Level != Warning || !strings.Contains(f.Msg, "no meaning in TCP_CHECK") {
		t.Errorf("finding %v", f)
	}
	// A PCRE-only expression is left out with a warning.
	cfg, rep = load(t, vs("HTTP_GET {\n url {\n path /\n regex \"(?<=a)b\"\n }\n }"))
	if f := find(t, rep, "regex"); f.Level != Warning {
		t.Errorf("finding %v", f)
	}
	if h := (*cfg.Services[0].RealServers[0].Checks)[0].HTTP; h.Body != "" {
		t.Errorf("body %q, want none", h.Body)
	}
	// A bad digest is refused by director, at the keepalived line.
	_, rep, err := convertString(t, vs("HTTP_GET {\n url {\n path /\n digest xyz\n }\n }"), testOptions)
	if err == nil {
		t.Fatal("a bad digest converted")
	}
	if f := find(t, rep, "digest"); f.Level != Error || f.Pos.Line != 16 || !strings.Contains(f.Msg, "digest") {
		t.Errorf("finding %v", f)
	}
}

// Every checker director has is carried, with every url and every checker
// of a real server (keepalived needs them all to pass, as director does).
func TestCheckersConverted(t *testing.T) {
	cfg, rep := load(t, instance+`
virtual_server 192.0.2.10 53 {
    protocol UDP
    delay_loop 10
    real_server 192.0.2.20 53 {
        DNS_CHECK {
            type A
            name www.example.com
            connect_ip 192.0.2.99
            bindto 192.0.2.1
        }
        MISC_CHECK {
            misc_path "/usr/local/bin/check-dns 192.0.2.20"
            misc_timeout 4
            misc_dynamic
        }
    }
    real_server 192.0.2.21 53 {
        MISC_CHECK {
            misc_path "/usr/local/bin/check | grep ok"
        }
        HTTP_GET {
            connect_timeout 30
            url {
                path /one
                regex "^ok"
            }
            url {
                path /two
                status_code 200 301-302
                virtualhost two.example.com
            }
        }
    }
}`)
	rs := cfg.Services[0].RealServers
	a := *rs[0].Checks
	if len(a) != 2 {
		t.Fatalf("rs0 checks = %+v, want a dns and an exec check", a)
	}
	dns, misc := a[0], a[1]
	if dns.Type != "dns" || dns.DNS.Type != "A" || dns.DNS.Name != "www.example.com" || dns.ConnectIP != "192.0.2.99" ||
		dns.Source != "192.0.2.1" || dns.Retries != 3 || dns.RetryDelay.D() != 10*time.Second {
		t.Errorf("dns check = %+v %+v, want keepalived's DNS_CHECK retry 3 and delay_before_retry delay_loop", dns, dns.DNS)
	}
	if misc.Type != "exec" || strings.Join(misc.Exec.Command, " ") != "/usr/local/bin/check-dns 192.0.2.20" || !misc.Exec.Dynamic ||
		misc.Timeout.D() != 4*time.Second || misc.Retries != 0 {
		t.Errorf("misc check = %+v %+v", misc, misc.Exec)
	}
	b := *rs[1].Checks
	if len(b) != 3 {
		t.Fatalf("rs1 checks = %+v, want exec and one http check per url", b)
	}
	if strings.Join(b[0].Exec.Command, "|") != "/bin/sh|-c|/usr/local/bin/check | grep ok" || b[0].Timeout.D() != 10*time.Second {
		t.Errorf("shell misc check = %+v %+v, want /bin/sh -c and misc_timeout's default, delay_loop", b[0], b[0].Exec)
	}
	if b[1].HTTP.Path != "/one" || b[1].HTTP.Body != "^ok" || b[2].HTTP.Path != "/two" || b[2].HTTP.Host != "two.example.com" ||
		strings.Join(b[2].HTTP.Status, ",") != "200,301-302" {
		t.Errorf("url checks = %+v %+v", b[1].HTTP, b[2].HTTP)
	}
	// connect_timeout 30 > delay_loop 10: cut, with a warning.
	if b[1].Timeout.D() != 10*time.Second {
		t.Errorf("timeout = %s, want it cut to the interval", b[1].Timeout.D())
	}
	if f := find(t, rep, "HTTP_GET"); f.Level != Warning || !strings.Contains(f.Msg, "cut to 10s") {
		t.Errorf("finding = %v", f)
	}
}

func TestQuorumAndInhibit(t *testing.T) {
	cfg, rep := load(t, instance+`
virtual_server 192.0.2.10 80 {
    protocol TCP
    quorum 4
    hysteresis 1
    real_server 192.0.2.20 80 {
        TCP_CHECK {
        }
    }
}
virtual_server 192.0.2.10 81 {
    protocol TCP
    inhibit_on_failure
    quorum 2
    real_server 192.0.2.20 81 {
        TCP_CHECK {
        }
    }
}
virtual_server 192.0.2.10 82 {
    protocol TCP
    hysteresis 3
    real_server 192.0.2.20 82 {
        inhibit_on_failure
        TCP_CHECK {
        }
    }
    real_server 192.0.2.21 82 {
        TCP_CHECK {
        }
    }
}`)
	s := cfg.Services
	// keepalived: lost below 4-1, regained at 4+1.
	if s[0].Quorum != 3 || s[0].Hysteresis != 2 || s[0].OnFailure != "remove" {
		t.Errorf("service 0 = quorum %d hysteresis %d on_failure %s, want 3, 2, remove", s[0].Quorum, s[0].Hysteresis, s[0].OnFailure)
	}
	if s[1].Quorum != 2 || s[1].Hysteresis != 0 || s[1].OnFailure != "" {
		t.Errorf("service 1 = quorum %d hysteresis %d on_failure %s, want 2, 0 and drain (the default)", s[1].Quorum, s[1].Hysteresis, s[1].OnFailure)
	}
	// quorum 1 - hysteresis 3 never loses in keepalived; regained at 4.
	if s[2].Quorum != 1 || s[2].Hysteresis != 3 || s[2].OnFailure != "" {
		t.Errorf("service 2 = quorum %d hysteresis %d on_failure %s, want 1, 3 and drain (the default)", s[2].Quorum, s[2].Hysteresis, s[2].OnFailure)
	}
	if f := find(t, rep, "inhibit_on_failure"); f.Level != Warning || f.Pos.Line != 28 {
		t.Errorf("mixed inhibit_on_failure finding = %v", f)
	}
}

func TestValidationErrorsPointAtKeepalivedLines(t *testing.T) {
	src := instance + `
vrrp_instance VI_2 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        192.0.2.11/24
    }
}`
	_, rep, err := convertString(t, src, testOptions)
	if err == nil {
		t.Fatal("duplicate vrid converted")
	}
	f := rep.Findings[0]
	if f.Level != Error || f.Pos.Line != 12 || !strings.Contains(f.Msg, "already used") {
		t.Errorf("finding = %v, want the duplicate vrid at line 12", f)
	}
}

func TestMissingRequiredSettings(t *testing.T) {
	_, rep, err := convertString(t, "vrrp_instance VI_1 {\n virtual_ipaddress {\n 192.0.2.1\n }\n}\n", testOptions)
	if err == nil {
		t.Fatal("converted without interface and vrid")
	}
	var msgs []string
	for _, f := range rep.Findings {
		msgs = append(msgs, f.Msg)
	}
	got := strings.Join(msgs, "\n")
	if !strings.Contains(got, "no interface") || !strings.Contains(got, "no virtual_router_id") || rep.Count(Error) != 2 {
		t.Errorf("findings:\n%s\nwant exactly the missing interface and virtual_router_id", got)
	}
}

func TestSyncDaemon(t *testing.T) {
	cfg, _ := load(t, "global_defs {\n lvs_sync_daemon eth1 inst VI_1\n}\n"+instance)
	if s := cfg.IPVS.Sync; s == nil || s.Interface != "eth1" || s.Instance != "VI_1" || s.SyncID != 51 {
		t.Errorf("sync = %+v, want eth1, VI_1 and the instance's vrid 51 as the id", s)
	}
	cfg, rep := load(t, "global_defs {\n lvs_sync_daemon eth1 id 9 maxlen 1400\n}\n"+instance)
	if s := cfg.IPVS.Sync; s == nil || s.SyncID != 9 || s.Instance != "" {
		t.Errorf("sync = %+v", s)
	}
	if f := find(t, rep, "lvs_sync_daemon"); f.Level != Warning || !strings.Contains(f.Msg, "maxlen") {
		t.Errorf("finding = %v", f)
	}
}

func TestSchedulerFlagsAndForwarding(t *testing.T) {
	cfg, _ := load(t, instance+`
virtual_server 192.0.2.10 80 {
    protocol TCP
    lvs_sched sh
    flag-1
    flag-2
    lvs_method TUN
    real_server 192.0.2.20 80 {
        lvs_method DR
        weight 0
        uthreshold 10
        lthreshold 5
    }
}`)
	s := cfg.Services[0]
	if strings.Join(s.SchedulerFlags, ",") != "sh-fallback,sh-port" || s.Forwarding != "tunnel" {
		t.Errorf("service flags %v forwarding %s", s.SchedulerFlags, s.Forwarding)
	}
	r := s.RealServers[0]
	if r.Forwarding != "dr" || r.EffectiveWeight() != 0 || r.UpperThreshold != 10 || r.LowerThreshold != 5 {
		t.Errorf("real server = %+v", r)
	}
}

// ops, persistence_engine sip and lvs_method TUN's encapsulations are
// converted where keepalived gives them an effect.
func TestOpsEngineAndTunnels(t *testing.T) {
	cfg, rep := load(t, instance+`
virtual_server 192.0.2.10 5060 {
    protocol UDP
    ops
    persistence_timeout 60
    persistence_engine sip
    real_server 192.0.2.20 5060 {
    }
}
virtual_server fwmark 7 {
    ops
    real_server 192.0.2.20 {
    }
}
virtual_server 192.0.2.10 80 {
    protocol TCP
    lvs_method TUN type gue port 6080 csum
    real_server 192.0.2.21 80 {
    }
    real_server 192.0.2.22 80 {
        lvs_method TUN type gre csum
    }
    real_server 192.0.2.23 80 {
        lvs_method TUN
    }
    real_server 192.0.2.24 80 {
        lvs_method TUN type gue port 6080 csum
    }
    real_server 192.0.2.25 80 {
        lvs_method DR
    }
}
virtual_server 192.0.2.10 81 {
    protocol TCP
    lvs_method DR
    real_server 192.0.2.21 81 {
        lvs_method TUN type gue port 7000 remcsum
    }
}`)
	sip, mark, tun, mixed := cfg.Services[0], cfg.Services[1], cfg.Services[2], cfg.Services[3]
	if !sip.OPS || sip.Persistence == nil || sip.Persistence.Engine != "sip" {
		t.Errorf("sip: ops %v persistence %+v", sip.OPS, sip.Persistence)
	}
	if !mark.OPS {
		t.Error("ops dropped from a firewall-mark service")
	}
	want := []*config.Tunnel{{Type: "gue", Port: 6080, Checksum: "csum"}, {Type: "gre", Checksum: "csum"}, {Type: "ipip", Checksum: "nocsum"}, {Type: "gue", Port: 6080, Checksum: "csum"}, nil}
	for i, w := range want {
		r := &tun.RealServers[i]
		got := tun.EffectiveTunnel(r)
		if r.Forwarding == "dr" {
			got = nil
		}
		if (got == nil) != (w == nil) || (w != nil && *got != *w) {
			t.Errorf("tunnel of %s: %+v, want %+v", r.Address, got, w)
		}
	}
	if tun.RealServers[3].Tunnel != nil {
		t.Errorf("a real server with the service's encapsulation repeats it: %+v", tun.RealServers[3].Tunnel)
	}
	if g := mixed.EffectiveTunnel(&mixed.RealServers[0]); mixed.Forwarding != "dr" || g == nil || *g != (config.Tunnel{Type: "gue", Port: 7000, Checksum: "remcsum"}) {
		t.Errorf("tunnelled server of a DR service: %+v", g)
	}
	for _, f := range rep.Findings {
		if f.Keyword == "ops" || f.Keyword == "persistence_engine" || f.Keyword == "lvs_method" {
			t.Errorf("finding %v", f)
		}
	}
}

// Where keepalived resets or the kernel ignores them, they are reported and
// left out; tunnel options keepalived refuses are errors.
func TestOpsEngineAndTunnelProblems(t *testing.T) {
	svc := func(body string) string {
		return instance + "virtual_server 192.0.2.10 80 {\n    protocol TCP\n" + body + "\n    real_server 192.0.2.20 80 {\n    }\n}\n"
	}
	for _, c := range []struct{ body, keyword, msg string }{
		{"    ops", "ops", "keepalived resets it on TCP"},
		{"    persistence_timeout 60\n    persistence_engine sip", "persistence_engine", "reads UDP only"},
		{"    persistence_engine sip", "persistence_engine", "without persistence_timeout"},
		{"    persistence_timeout 60\n    persistence_engine rtsp", "persistence_engine", `unknown engine "rtsp"`},
	} {
		cfg, rep := load(t, svc(c.body))
		if f := find(t, rep, c.keyword); f.Level != Warning || !strings.Contains(f.Msg, c.msg) {
			t.Errorf("%q: finding %v, want a warning with %q", c.body, f, c.msg)
		}
		if s := cfg.Services[0]; s.OPS || (s.Persistence != nil && s.Persistence.Engine != "") {
			t.Errorf("%q: converted anyway: %+v", c.body, s)
		}
	}
	for _, c := range []struct{ opts, msg string }{
		{"type gue", "needs a port"},
		{"type gre port 6080", "only a gue tunnel has one"},
		{"type ipip csum", "ipip tunnel has no checksum"},
		{"type gre remcsum", "no remote checksum"},
		{"type vxlan", `tunnel type "vxlan"`},
		{"type gue port 0", "from 1 to 65535"},
		{"type gue port", "port needs a value"},
		{"fast", `unknown tunnel option "fast"`},
	} {
		_, rep, _ := convertString(t, svc("    lvs_method TUN "+c.opts), testOptions)
		if f := find(t, rep, "lvs_method"); f.Level != Error || !strings.Contains(f.Msg, c.msg) {
			t.Errorf("%q: finding %v, want an error with %q", c.opts, f, c.msg)
		}
	}
}

func TestFindingsInInputOrder(t *testing.T) {
	// The preempt_delay warning is found when the instance is finished,
	// after the keyword on line 12 was walked; the report is sorted all
	// the same.
	src := strings.Replace(instance, "interface eth0", "interface eth0\n nopreempt\n preempt_delay 5", 1) +
		"virtual_server 192.0.2.10 80 {\n frobnicate\n real_server 192.0.2.20 80 {\n }\n}\n"
	_, rep := load(t, src)
	if len(rep.Findings) < 3 {
		t.Fatalf("want at least 3 findings, got %v", rep.Findings)
	}
	for i := 1; i < len(rep.Findings); i++ {
		if l := rep.Findings[i].Pos.Line; l != 0 && l < rep.Findings[i-1].Pos.Line {
			t.Errorf("findings out of order: %v", rep.Findings)
		}
	}
}

func TestEditDistance(t *testing.T) {
	cases := []struct {
		a, b string
		d    int
	}{
		{"vrrp_instnace", "vrrp_instance", 1}, // a transposition
		{"priorty", "priority", 1},
		{"virtual_ipadress", "virtual_ipaddress", 1},
		{"abc", "abc", 0},
		{"lb_algo", "vrrp_instance", 3}, // capped at the limit
	}
	for _, c := range cases {
		if got := editDistance(c.a, c.b, 3); got != c.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", c.a, c.b, got, c.d)
		}
	}
	if s := suggest("nopremept", instanceBlock.names()); s != "nopreempt" {
		t.Errorf("suggest(nopremept) = %q", s)
	}
	if s := suggest("xyzzy", instanceBlock.names()); s != "" {
		t.Errorf("suggest(xyzzy) = %q, want none", s)
	}
}

func mustParse(t *testing.T, data []byte) *config.Config {
	t.Helper()
	cfg, err := config.Parse("out.yaml", data)
	if err != nil {
		t.Fatalf("config.Parse: %v\n%s", err, data)
	}
	return cfg
}

func TestServiceWithoutRealServersIsSkipped(t *testing.T) {
	cfg, rep := load(t, instance+"virtual_server 192.0.2.10 80 {\n protocol TCP\n}\n")
	if len(cfg.Services) != 0 {
		t.Errorf("services = %+v, want none", cfg.Services)
	}
	if f := find(t, rep, "virtual_server"); f.Level != Warning || f.Pos.Line != 9 || !strings.Contains(f.Msg, "no real_server") {
		t.Errorf("finding = %v", f)
	}
}

func TestPreemptDelayWithNopreemptIsDropped(t *testing.T) {
	src := strings.Replace(instance, "interface eth0", "interface eth0\n nopreempt\n preempt_delay 5", 1)
	cfg, rep := load(t, src)
	if in := cfg.Instances[0]; in.PreemptEnabled() || in.PreemptDelay != 0 {
		t.Errorf("preempt %v delay %s, want false and none", in.PreemptEnabled(), in.PreemptDelay.D())
	}
	if f := find(t, rep, "preempt_delay"); f.Level != Warning || f.Pos.Line != 5 {
		t.Errorf("finding = %v", f)
	}
}

// keepalived tolerates a VIP listed twice; the conversion keeps it once and
// says so, where director's loader alone would refuse the list.
func TestDuplicateVIPIsKeptOnce(t *testing.T) {
	cfg, rep := load(t, `
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        192.0.2.10/24
        192.0.2.11
        192.0.2.10/32 dev eth1
    }
    virtual_ipaddress_excluded {
        192.0.2.11
        2001:db8::1
    }
    unicast_peer {
        192.0.2.2
        192.0.2.2
    }
}`)
	in := cfg.Instances[0]
	if strings.Join(in.Unicast.Peers, ",") != "192.0.2.2" {
		t.Errorf("peers %v, want 192.0.2.2 once", in.Unicast.Peers)
	}
	if strings.Join(in.VIPs, ",") != "192.0.2.10/24,192.0.2.11" || strings.Join(in.VIPsExcluded, ",") != "2001:db8::1" {
		t.Errorf("vips %v excluded %v, want each address once, where it was first listed", in.VIPs, in.VIPsExcluded)
	}
	var dups []string
	for _, f := range rep.Findings {
		if f.Level == Warning && strings.Contains(f.Msg, "listed twice") {
			dups = append(dups, fmt.Sprintf("%d %s", f.Pos.Line, f.Keyword))
		}
	}
	if strings.Join(dups, ",") != "8 virtual_ipaddress,11 virtual_ipaddress_excluded,16 unicast_peer" {
		t.Errorf("duplicate warnings at %v, want lines 8, 11 and 16", dups)
	}
}

// virtual_server_group entries: keepalived's forms carry over as they are;
// an entry without a port is skipped with a warning; a bad one is an error
// at its line.
func TestServerGroupEntries(t *testing.T) {
	group := func(entries string) string {
		return instance + "virtual_server_group G {\n" + entries + "}\nvirtual_server group G {\n protocol TCP\n real_server 192.0.2.20 80 {\n }\n}\n"
	}
	cfg, rep := load(t, group(" 192.0.2.10 80\n 192.0.2.30-40 80\n 192.0.2.48/29 80\n 192.0.2.60-192.0.2.61 80\n 192.0.2.70\n fwmark 3 inet\n"))
	s := cfg.Services[0]
	if s.Name != "G" || len(s.Members) != 5 || len(s.Endpoints) != 1+11+8+2+1 {
		t.Errorf("service %s members %+v endpoints %d, want G with 5 members and 23 virtual services", s.Name, s.Members, len(s.Endpoints))
	}
	if f := find(t, rep, "virtual_server_group"); f.Level != Warning || f.Pos.Line != 14 || !strings.Contains(f.Msg, "without a port") {
		t.Errorf("finding = %v, want the port-less entry skipped at line 14", f)
	}
	for _, c := range []struct{ entry, want string }{
		{" 192.0.2.30-300 80\n", `range's end "300"`},
		{" 192.0.2.9/29 80\n", "write the prefix's first address"},
		{" fwmark 0\n", "fwmark: want a number"},
		{" 192.0.2.10 http\n", "want a port"},
	} {
		_, rep, err := convertString(t, group(" 192.0.2.10 80\n"+c.entry), testOptions)
		if err == nil {
			t.Errorf("%q converted", c.entry)
			continue
		}
		if f := find(t, rep, "virtual_server_group"); f.Level != Error || f.Pos.Line != 11 || !strings.Contains(f.Msg, c.want) {
			t.Errorf("%q: finding = %v, want an error at line 11 with %q", c.entry, f, c.want)
		}
	}
}

// An instance's lvs_sync_daemon_interface is keepalived's old form of
// lvs_sync_daemon IF INSTANCE.
func TestSyncDaemonInterfaceInInstance(t *testing.T) {
	cfg, rep := load(t, strings.Replace(instance, "interface eth0", "interface eth0\n lvs_sync_daemon_interface eth1", 1))
	if s := cfg.IPVS.Sync; s == nil || s.Interface != "eth1" || s.Instance != "VI_1" || s.SyncID != 51 {
		t.Errorf("sync = %+v, want eth1 following VI_1 with its vrid as the id", s)
	}
	if f := find(t, rep, "lvs_sync_daemon_interface"); f.Level != Note {
		t.Errorf("finding = %v", f)
	}
}

// keepalived removes the second of a real server listed twice; so does the
// conversion, where the loader would refuse the list.
func TestDuplicateRealServerIsDropped(t *testing.T) {
	cfg, rep := load(t, instance+`
virtual_server 192.0.2.10 80 {
    protocol TCP
    real_server 192.0.2.20 80 {
        weight 2
    }
    real_server 192.0.2.20 {
        weight 5
    }
}`)
	if rs := cfg.Services[0].RealServers; len(rs) != 1 || rs[0].EffectiveWeight() != 2 {
		t.Errorf("real servers = %+v, want the first only", rs)
	}
	if f := find(t, rep, "real_server"); f.Level != Warning || f.Pos.Line != 15 {
		t.Errorf("finding = %v, want a warning at line 15", f)
	}
}

// A MISC_CHECK that runs a script with /bin/sh and one argument is split
// into words; only shell syntax gets the note that it runs under sh -c.
func TestMiscPathShellNote(t *testing.T) {
	cfg, rep := load(t, instance+`
virtual_server 192.0.2.10 7 {
    protocol TCP
    real_server 192.0.2.20 7 {
        MISC_CHECK {
            misc_path "/bin/sh /etc/keepalived/check.sh rs1"
        }
    }
    real_server 192.0.2.21 7 {
        MISC_CHECK {
            misc_path "/usr/local/bin/check >/dev/null"
        }
    }
}`)
	rs := cfg.Services[0].RealServers
	if got := strings.Join((*rs[0].Checks)[0].Exec.Command, "|"); got != "/bin/sh|/etc/keepalived/check.sh|rs1" {
		t.Errorf("command = %q, want the three words", got)
	}
	if got := strings.Join((*rs[1].Checks)[0].Exec.Command, "|"); got != "/bin/sh|-c|/usr/local/bin/check >/dev/null" {
		t.Errorf("command = %q, want it run by /bin/sh -c", got)
	}
	var notes []Finding
	for _, f := range rep.Findings {
		if f.Keyword == "misc_path" {
			notes = append(notes, f)
		}
	}
	if len(notes) != 1 || notes[0].Pos.Line != 19 || !strings.Contains(notes[0].Msg, "shell syntax") {
		t.Errorf("misc_path findings = %v, want one shell-syntax note at line 19", notes)
	}
}

// With DR, one address on two ports is one IPVS destination (keepalived
// gives it the service's port): the second is left out with a warning, as
// keepalived fails to add it. With NAT both are kept.
func TestRoutedRealServerOnTwoPorts(t *testing.T) {
	src := instance + `
virtual_server 192.0.2.10 80 {
    protocol TCP
    lb_kind KIND
    real_server 192.0.2.20 80 {
        weight 2
    }
    real_server 192.0.2.20 8080 {
        weight 5
    }
}`
	cfg, rep := load(t, strings.Replace(src, "KIND", "DR", 1))
	if rs := cfg.Services[0].RealServers; len(rs) != 1 || rs[0].Port != 80 || rs[0].EffectiveWeight() != 2 {
		t.Errorf("DR real servers = %+v, want the first only", rs)
	}
	if f := find(t, rep, "real_server"); f.Level != Warning || f.Pos.Line != 16 || !strings.Contains(f.Msg, "line 13") {
		t.Errorf("finding = %v, want a warning at line 16 naming line 13", f)
	}
	cfg, rep = load(t, strings.Replace(src, "KIND", "NAT", 1))
	if rs := cfg.Services[0].RealServers; len(rs) != 2 {
		t.Errorf("NAT real servers = %+v, want both", rs)
	}
	for _, f := range rep.Findings {
		if f.Keyword == "real_server" {
			t.Errorf("NAT: finding %v", f)
		}
	}
}
