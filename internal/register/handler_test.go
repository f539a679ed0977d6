package register

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/director-lb/director/internal/testlog"
)

const testToken = "0123456789abcdef-secret"

type call struct {
	op      string
	service string
	addr    netip.AddrPort
	weight  int
}

// fakeBackend records calls and can be told to fail.
type fakeBackend struct {
	mu    sync.Mutex
	calls []call
	err   error
}

func (f *fakeBackend) Register(r Registration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call{"register", r.Service, r.Addr, r.Weight})
	return f.err
}

func (f *fakeBackend) Deregister(service string, ap netip.AddrPort) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call{"deregister", service, ap, 0})
	return f.err
}

func testPools() map[string]Pool {
	return map[string]Pool{
		"web": {Service: "web", Port: 80, Family: 4,
			Allowed: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}},
		"api6": {Service: "api6", Family: 6, MaxWeight: 10,
			Allowed: []netip.Prefix{netip.MustParsePrefix("2001:db8::/64")}},
		"closed": {Service: "closed", Family: 4},
		"broken": {Service: "broken", Family: 0,
			Allowed: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
	}
}

func newTestHandler(t *testing.T) (*Handler, *fakeBackend, *testlog.Buffer) {
	t.Helper()
	fb := &fakeBackend{}
	lb := &testlog.Buffer{}
	h, err := New(testToken, testPools, fb, slog.New(slog.NewTextHandler(lb, nil)))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return h, fb, lb
}

type result struct {
	code int
	body map[string]any
}

func do(t *testing.T, h http.Handler, method, path, token, body string) result {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.RemoteAddr = "127.0.0.1:40000"
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := result{code: rec.Code}
	if err := json.Unmarshal(rec.Body.Bytes(), &res.body); err != nil {
		t.Fatalf("%s %s: response %q is not JSON: %v", method, path, rec.Body.String(), err)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	return res
}

func TestRegisterSuccess(t *testing.T) {
	h, fb, _ := newTestHandler(t)
	res := do(t, h, "POST", "/v1/register", testToken,
		`{"service":"web","address":"10.0.0.23","port":80,"weight":5}`)
	if res.code != http.StatusOK || res.body["status"] != "registered" {
		t.Fatalf("got %d %v", res.code, res.body)
	}
	if res.body["address"] != "10.0.0.23" || res.body["port"] != float64(80) || res.body["weight"] != float64(5) {
		t.Errorf("response body %v", res.body)
	}
	want := call{"register", "web", netip.MustParseAddrPort("10.0.0.23:80"), 5}
	if len(fb.calls) != 1 || fb.calls[0] != want {
		t.Fatalf("backend calls %+v, want [%+v]", fb.calls, want)
	}
}

func TestRegisterDefaultsAndLimits(t *testing.T) {
	h, fb, _ := newTestHandler(t)
	cases := []struct {
		body string
		want call
	}{
		// weight omitted: 1
		{`{"service":"web","address":"10.0.0.1","port":80}`,
			call{"register", "web", netip.MustParseAddrPort("10.0.0.1:80"), 1}},
		// weight 0 registers drained
		{`{"service":"web","address":"10.0.0.2","port":80,"weight":0}`,
			call{"register", "web", netip.MustParseAddrPort("10.0.0.2:80"), 0}},
		// default cap is 100
		{`{"service":"web","address":"10.0.0.3","port":80,"weight":100}`,
			call{"register", "web", netip.MustParseAddrPort("10.0.0.3:80"), 100}},
		// IPv6 pool with any port and its own cap
		{`{"service":"api6","address":"2001:db8::7","port":8443,"weight":10}`,
			call{"register", "api6", netip.MustParseAddrPort("[2001:db8::7]:8443"), 10}},
	}
	for _, c := range cases {
		fb.calls = nil
		res := do(t, h, "POST", "/v1/register", testToken, c.body)
		if res.code != http.StatusOK {
			t.Errorf("%s: got %d %v", c.body, res.code, res.body)
			continue
		}
		if len(fb.calls) != 1 || fb.calls[0] != c.want {
			t.Errorf("%s: backend calls %+v, want %+v", c.body, fb.calls, c.want)
		}
	}
}

func TestDeregisterSuccess(t *testing.T) {
	h, fb, _ := newTestHandler(t)
	res := do(t, h, "POST", "/v1/deregister", testToken,
		`{"service":"web","address":"10.0.0.23","port":80}`)
	if res.code != http.StatusOK || res.body["status"] != "deregistered" {
		t.Fatalf("got %d %v", res.code, res.body)
	}
	want := call{"deregister", "web", netip.MustParseAddrPort("10.0.0.23:80"), 0}
	if len(fb.calls) != 1 || fb.calls[0] != want {
		t.Fatalf("backend calls %+v, want [%+v]", fb.calls, want)
	}
}

func TestWrongTokenRefused(t *testing.T) {
	const body = `{"service":"web","address":"10.0.0.23","port":80}`
	for _, path := range []string{"/v1/register", "/v1/deregister"} {
		for name, hdr := range map[string]string{
			"missing":      "",
			"wrong":        "Bearer not-the-right-token-at-all",
			"prefix":       "Bearer " + testToken[:len(testToken)-1],
			"longer":       "Bearer " + testToken + "x",
			"basic scheme": "Basic " + testToken,
			"no scheme":    testToken,
		} {
			h, fb, lb := newTestHandler(t)
			req := httptest.NewRequest("POST", path, strings.NewReader(body))
			req.RemoteAddr = "127.0.0.1:40001"
			if hdr != "" {
				req.Header.Set("Authorization", hdr)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusUnauthorized {
				t.Errorf("%s %s: got %d, want 401", path, name, rec.Code)
			}
			if len(fb.calls) != 0 {
				t.Errorf("%s %s: backend called: %+v", path, name, fb.calls)
			}
			logs := lb.String()
			if !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "127.0.0.1:40001") {
				t.Errorf("%s %s: no WARN with remote address in log %q", path, name, logs)
			}
			if strings.Contains(logs, "not-the-right") || strings.Contains(logs, testToken[:10]) ||
				strings.Contains(rec.Body.String(), testToken[:10]) {
				t.Errorf("%s %s: token echoed: log %q body %q", path, name, logs, rec.Body.String())
			}
		}
	}
}

func TestBearerSchemeCaseInsensitive(t *testing.T) {
	h, fb, _ := newTestHandler(t)
	req := httptest.NewRequest("POST", "/v1/register",
		strings.NewReader(`{"service":"web","address":"10.0.0.23","port":80}`))
	req.Header.Set("Authorization", "bearer "+testToken)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || len(fb.calls) != 1 {
		t.Fatalf("got %d, calls %+v", rec.Code, fb.calls)
	}
}

func TestValidationFailures(t *testing.T) {
	cases := []struct {
		name, path, body string
		code             int
		field            string
	}{
		{"unknown service", "/v1/register", `{"service":"nope","address":"10.0.0.1","port":80}`, 404, "service"},
		{"deregister unknown service", "/v1/deregister", `{"service":"nope","address":"10.0.0.1","port":80}`, 404, "service"},
		{"not JSON", "/v1/register", `service=web`, 400, "body"},
		{"unknown field", "/v1/register", `{"service":"web","address":"10.0.0.1","port":80,"extra":1}`, 400, "extra"},
		{"missing service", "/v1/register", `{"address":"10.0.0.1","port":80}`, 400, "service"},
		{"missing address", "/v1/register", `{"service":"web","port":80}`, 400, "address"},
		{"missing port", "/v1/register", `{"service":"web","address":"10.0.0.1"}`, 400, "port"},
		{"bad address", "/v1/register", `{"service":"web","address":"10.0.0.300","port":80}`, 400, "address"},
		{"address with zone", "/v1/register", `{"service":"api6","address":"2001:db8::1%eth0","port":80}`, 400, "address"},
		{"address not allowed", "/v1/register", `{"service":"web","address":"10.0.1.1","port":80}`, 400, "address"},
		{"deregister not allowed", "/v1/deregister", `{"service":"web","address":"192.0.2.1","port":80}`, 400, "address"},
		{"empty allowed refuses all", "/v1/register", `{"service":"closed","address":"10.0.0.1","port":80}`, 400, "address"},
		{"family mismatch v6 in v4", "/v1/register", `{"service":"web","address":"2001:db8::1","port":80}`, 400, "address"},
		{"family mismatch v4 in v6", "/v1/register", `{"service":"api6","address":"10.0.0.1","port":80}`, 400, "address"},
		{"v4-mapped in v4 pool", "/v1/register", `{"service":"web","address":"::ffff:10.0.0.1","port":80}`, 400, "address"},
		{"wrong port", "/v1/register", `{"service":"web","address":"10.0.0.1","port":8080}`, 400, "port"},
		{"port zero any", "/v1/register", `{"service":"api6","address":"2001:db8::1","port":0}`, 400, "port"},
		{"port too big", "/v1/register", `{"service":"api6","address":"2001:db8::1","port":65536}`, 400, "port"},
		{"port as string", "/v1/register", `{"service":"web","address":"10.0.0.1","port":"80"}`, 400, "port"},
		{"weight negative", "/v1/register", `{"service":"web","address":"10.0.0.1","port":80,"weight":-1}`, 400, "weight"},
		{"weight over default cap", "/v1/register", `{"service":"web","address":"10.0.0.1","port":80,"weight":101}`, 400, "weight"},
		{"weight over pool cap", "/v1/register", `{"service":"api6","address":"2001:db8::1","port":1,"weight":11}`, 400, "weight"},
		{"weight fractional", "/v1/register", `{"service":"web","address":"10.0.0.1","port":80,"weight":1.5}`, 400, "weight"},
		{"weight on deregister", "/v1/deregister", `{"service":"web","address":"10.0.0.1","port":80,"weight":1}`, 400, "weight"},
		{"pool misconfigured", "/v1/register", `{"service":"broken","address":"10.0.0.1","port":80}`, 500, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, fb, _ := newTestHandler(t)
			res := do(t, h, "POST", c.path, testToken, c.body)
			if res.code != c.code {
				t.Fatalf("got %d %v, want %d", res.code, res.body, c.code)
			}
			if c.field != "" {
				if res.body["field"] != c.field {
					t.Errorf("field = %v, want %q (body %v)", res.body["field"], c.field, res.body)
				}
				if msg, _ := res.body["error"].(string); !strings.Contains(msg, c.field) {
					t.Errorf("message %q does not name %q", msg, c.field)
				}
			}
			if len(fb.calls) != 0 {
				t.Errorf("backend called: %+v", fb.calls)
			}
		})
	}
}

func TestBackendError(t *testing.T) {
	for _, path := range []string{"/v1/register", "/v1/deregister"} {
		h, fb, _ := newTestHandler(t)
		fb.err = errors.New("state file is read-only")
		res := do(t, h, "POST", path, testToken, `{"service":"web","address":"10.0.0.9","port":80}`)
		if res.code != http.StatusInternalServerError {
			t.Fatalf("%s: got %d, want 500", path, res.code)
		}
		if msg, _ := res.body["error"].(string); !strings.Contains(msg, "state file is read-only") {
			t.Errorf("%s: message %q lacks the backend error", path, msg)
		}
		if len(fb.calls) != 1 {
			t.Errorf("%s: backend calls %+v", path, fb.calls)
		}
	}
}

func TestMethodAndPath(t *testing.T) {
	h, fb, _ := newTestHandler(t)
	for _, m := range []string{"GET", "PUT", "DELETE"} {
		req := httptest.NewRequest(m, "/v1/register", nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "POST" {
			t.Errorf("%s: got %d Allow=%q", m, rec.Code, rec.Header().Get("Allow"))
		}
	}
	if res := do(t, h, "POST", "/v1/other", testToken, `{}`); res.code != http.StatusNotFound {
		t.Errorf("unknown path: got %d", res.code)
	}
	if len(fb.calls) != 0 {
		t.Errorf("backend called: %+v", fb.calls)
	}
}

func TestSetToken(t *testing.T) {
	h, fb, _ := newTestHandler(t)
	const body = `{"service":"web","address":"10.0.0.5","port":80}`
	const next = "fedcba9876543210-rotated"
	if err := h.SetToken(next); err != nil {
		t.Fatalf("SetToken: %v", err)
	}
	if res := do(t, h, "POST", "/v1/register", testToken, body); res.code != http.StatusUnauthorized {
		t.Errorf("old token after reload: got %d, want 401", res.code)
	}
	if res := do(t, h, "POST", "/v1/register", next, body); res.code != http.StatusOK {
		t.Errorf("new token: got %d %v", res.code, res.body)
	}
	// A rejected reload keeps the current token.
	if err := h.SetToken("short"); err == nil {
		t.Error("SetToken accepted a 5-byte token")
	}
	if res := do(t, h, "POST", "/v1/register", next, body); res.code != http.StatusOK {
		t.Errorf("token after failed reload: got %d", res.code)
	}
	if len(fb.calls) != 2 {
		t.Errorf("backend calls %+v, want 2", fb.calls)
	}
}

func TestNewRefuses(t *testing.T) {
	fb := &fakeBackend{}
	if _, err := New("short", testPools, fb, nil); err == nil {
		t.Error("accepted short token")
	}
	if _, err := New("0123456789abcdef with space", testPools, fb, nil); err == nil {
		t.Error("accepted token with a space")
	}
	if _, err := New(testToken, nil, fb, nil); err == nil {
		t.Error("accepted nil pools")
	}
	if _, err := New(testToken, testPools, nil, nil); err == nil {
		t.Error("accepted nil backend")
	}
	if h, err := New(testToken, testPools, fb, nil); err != nil || h == nil {
		t.Errorf("nil logger: %v", err)
	}
}

// Pools are read per request, so a reload that drops a pool closes it at once.
func TestPoolsReloaded(t *testing.T) {
	fb := &fakeBackend{}
	var mu sync.Mutex
	pools := testPools()
	h, err := New(testToken, func() map[string]Pool {
		mu.Lock()
		defer mu.Unlock()
		return pools
	}, fb, nil)
	if err != nil {
		t.Fatal(err)
	}
	const body = `{"service":"web","address":"10.0.0.5","port":80}`
	if res := do(t, h, "POST", "/v1/register", testToken, body); res.code != 200 {
		t.Fatalf("before reload: %d", res.code)
	}
	mu.Lock()
	pools = map[string]Pool{}
	mu.Unlock()
	if res := do(t, h, "POST", "/v1/register", testToken, body); res.code != 404 {
		t.Fatalf("after reload: %d, want 404", res.code)
	}
}

// Over a real loopback listener, including the body size limit.
func TestOverLoopback(t *testing.T) {
	h, fb, _ := newTestHandler(t)
	srv := httptest.NewServer(h)
	defer srv.Close()
	post := func(token, body string) int {
		req, err := http.NewRequest("POST", srv.URL+"/v1/register", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := post("wrong-token-wrong-token", `{"service":"web","address":"10.0.0.8","port":80}`); c != 401 {
		t.Errorf("wrong token: %d", c)
	}
	if c := post(testToken, `{"service":"web","address":"10.0.0.8","port":80}`); c != 200 {
		t.Errorf("register: %d", c)
	}
	big := `{"service":"web","address":"10.0.0.8","port":80,"pad":"` + strings.Repeat("x", MaxBodySize) + `"}`
	if c := post(testToken, big); c != 400 {
		t.Errorf("oversized body: %d", c)
	}
	if len(fb.calls) != 1 {
		t.Errorf("backend calls %+v, want 1", fb.calls)
	}
}
