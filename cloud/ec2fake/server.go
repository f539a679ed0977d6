package ec2fake

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Call records one EC2 request, for tests.
type Call struct {
	At        time.Time
	Action    string
	AccessKey string
	// ENI is the NetworkInterfaceId parameter, if any.
	ENI string
	// IPs are the PrivateIpAddress(.N) and Ipv6Addresses.N parameters.
	IPs          []netip.Addr
	AllocationID string
	DryRun       bool
	// Status and Code are the HTTP status and EC2 error code returned
	// (Code is empty on success). Both are zero in the call passed to a hook.
	Status int
	Code   string
	// Moved is set on an AssignPrivateIpAddresses that took an IP away
	// from another ENI.
	Moved bool
}

// Fault is an injected failure.
type Fault struct {
	// Action selects the requests to fail: an EC2 action name, "" for every
	// EC2 action, or "IMDS" for metadata service reads.
	Action string
	// AccessKey, if set, limits the fault to requests signed with it.
	AccessKey string
	// Status is the HTTP status (default 500).
	Status int
	// Code and Message fill EC2's error envelope (default InternalError).
	Code, Message string
	// Body, if not nil, is sent verbatim instead of the envelope: garbage,
	// truncated XML, an HTML page from a proxy...
	Body []byte
	// Count is the number of requests to fail; 0 means until ClearFaults.
	Count int
	// AfterCommit makes the change first and then fails, like a response
	// lost after the server acted.
	AfterCommit bool
}

type faultState struct {
	Fault
	left int // -1: unlimited
}

type denyKey struct{ action, accessKey string }

// apiError is an EC2 error response.
type apiError struct {
	status        int
	code, message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

// InjectFault adds a fault; faults are matched in the order added.
func (f *Fake) InjectFault(ft Fault) {
	if ft.Status == 0 {
		ft.Status = http.StatusInternalServerError
	}
	if ft.Code == "" && ft.Body == nil {
		ft.Code, ft.Message = "InternalError", "An internal error has occurred"
	}
	left := ft.Count
	if left <= 0 {
		left = -1
	}
	f.mu.Lock()
	f.faults = append(f.faults, &faultState{Fault: ft, left: left})
	f.mu.Unlock()
}

// Throttle makes the next n requests for action ("" for any) fail the way
// EC2 throttles: HTTP 503 with RequestLimitExceeded.
func (f *Fake) Throttle(action string, n int) {
	f.InjectFault(Fault{Action: action, Status: http.StatusServiceUnavailable, Code: "RequestLimitExceeded", Message: "Request limit exceeded.", Count: n})
}

// ClearFaults removes every injected fault.
func (f *Fake) ClearFaults() {
	f.mu.Lock()
	f.faults = nil
	f.mu.Unlock()
}

// Deny makes actions fail with UnauthorizedOperation for requests signed
// with accessKey ("" for everyone), as a missing IAM permission would.
func (f *Fake) Deny(accessKey string, actions ...string) {
	f.mu.Lock()
	for _, a := range actions {
		f.denied[denyKey{a, accessKey}] = true
	}
	f.mu.Unlock()
}

// Allow undoes Deny for the same access key and actions.
func (f *Fake) Allow(accessKey string, actions ...string) {
	f.mu.Lock()
	for _, a := range actions {
		delete(f.denied, denyKey{a, accessKey})
	}
	f.mu.Unlock()
}

// Calls returns the EC2 requests answered so far, oldest first.
func (f *Fake) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Call, len(f.calls))
	for i, c := range f.calls {
		c.IPs = slices.Clone(c.IPs)
		out[i] = c
	}
	return out
}

// CountCalls counts the answered requests for action from accessKey ("" any).
func (f *Fake) CountCalls(action, accessKey string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c.Action == action && (accessKey == "" || c.AccessKey == accessKey) {
			n++
		}
	}
	return n
}

// maxBody bounds a request body; EC2 requests of the kind used are tiny.
const maxBody = 1 << 20

// ServeHTTP answers EC2 Query API requests (POST form or GET query).
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		f.writeError(w, errorf(http.StatusBadRequest, "MalformedQueryString", "could not parse the request: %v", err))
		return
	}
	form := r.Form
	call := Call{
		Action:       form.Get("Action"),
		AccessKey:    accessKeyOf(r.Header.Get("Authorization")),
		ENI:          form.Get("NetworkInterfaceId"),
		IPs:          parseIPs(form),
		AllocationID: form.Get("AllocationId"),
		DryRun:       form.Get("DryRun") == "true",
	}
	f.mu.Lock()
	hook := f.hook
	delay := f.lat[0]
	if spread := f.lat[1] - f.lat[0]; spread > 0 {
		delay += time.Duration(f.rng.Int64N(int64(spread) + 1))
	}
	f.mu.Unlock()
	if hook != nil {
		hook(call)
	}
	// The request is carried out whether or not the client is still
	// waiting: a caller that times out mid-call may still have changed
	// the state, as on EC2.
	time.Sleep(delay / 2)
	status, body := f.handle(&call, form, r.Header.Get("Authorization"))
	time.Sleep(delay - delay/2)
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// handle carries out one request and records it.
func (f *Fake) handle(call *Call, form url.Values, auth string) (int, []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	call.At = f.now()
	status, body := f.handleLocked(call, form, auth)
	call.Status = status
	f.calls = append(f.calls, *call)
	return status, body
}

func (f *Fake) handleLocked(call *Call, form url.Values, auth string) (int, []byte) {
	fail := func(e *apiError) (int, []byte) {
		call.Code = e.code
		return e.status, f.errorBody(e)
	}
	if auth == "" {
		return fail(errorf(http.StatusUnauthorized, "MissingAuthenticationToken", "Request is missing Authentication Token"))
	}
	if len(f.opt.AccessKeys) > 0 && !slices.Contains(f.opt.AccessKeys, call.AccessKey) {
		return fail(errorf(http.StatusUnauthorized, "AuthFailure", "AWS was not able to validate the provided access credentials"))
	}
	if form.Get("Version") == "" {
		return fail(errorf(http.StatusBadRequest, "MissingParameter", "The request must contain the parameter Version"))
	}
	ft := f.matchFaultLocked(call.Action, call.AccessKey)
	if ft != nil && !ft.AfterCommit {
		return f.faultResponse(call, ft)
	}
	op, ok := operations[call.Action]
	if !ok {
		return fail(errorf(http.StatusBadRequest, "InvalidAction", "The action %s is not valid for this web service.", call.Action))
	}
	if f.denied[denyKey{call.Action, call.AccessKey}] || f.denied[denyKey{call.Action, ""}] {
		return fail(errorf(http.StatusForbidden, "UnauthorizedOperation",
			"You are not authorized to perform this operation. User: arn:aws:iam::123456789012:user/%s is not authorized to perform: ec2:%s because no identity-based policy allows the ec2:%s action",
			call.AccessKey, call.Action, call.Action))
	}
	if call.DryRun && dryRunActions[call.Action] {
		return fail(errorf(http.StatusPreconditionFailed, "DryRunOperation", "Request would have succeeded, but DryRun flag is set."))
	}
	resp, apiErr := op(f, call, form)
	if apiErr != nil {
		return fail(apiErr)
	}
	if ft != nil {
		return f.faultResponse(call, ft)
	}
	return http.StatusOK, f.successBody(call.Action, resp)
}

func (f *Fake) faultResponse(call *Call, ft *Fault) (int, []byte) {
	call.Code = ft.Code
	if ft.Body != nil {
		return ft.Status, slices.Clone(ft.Body)
	}
	return ft.Status, f.errorBody(&apiError{status: ft.Status, code: ft.Code, message: ft.Message})
}

// matchFaultLocked returns the first live fault for the request and uses
// one of its counts.
func (f *Fake) matchFaultLocked(action, accessKey string) *Fault {
	for i, ft := range f.faults {
		if ft.Action != "" && ft.Action != action || ft.Action == "" && action == "IMDS" {
			continue
		}
		if ft.AccessKey != "" && ft.AccessKey != accessKey {
			continue
		}
		if ft.left > 0 {
			ft.left--
			if ft.left == 0 {
				f.faults = slices.Delete(f.faults, i, i+1)
			}
		}
		out := ft.Fault
		return &out
	}
	return nil
}

// accessKeyOf extracts the access key ID from a SigV4 Authorization header:
// "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/ec2/aws4_request, ...".
func accessKeyOf(auth string) string {
	_, rest, ok := strings.Cut(auth, "Credential=")
	if !ok {
		return ""
	}
	key, _, _ := strings.Cut(rest, "/")
	return key
}

// parseIPs collects PrivateIpAddress(.N) and Ipv6Addresses.N; unparsable
// values are skipped here and rejected by the operation.
func parseIPs(form url.Values) []netip.Addr {
	var out []netip.Addr
	for _, s := range append(listParam(form, "PrivateIpAddress"), listParam(form, "Ipv6Addresses")...) {
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, a)
		}
	}
	return out
}

// listParam returns name.1, name.2, ... in order, or name alone.
func listParam(form url.Values, name string) []string {
	var out []string
	for i := 1; ; i++ {
		v, ok := form[name+"."+strconv.Itoa(i)]
		if !ok {
			break
		}
		out = append(out, v...)
	}
	if len(out) == 0 {
		out = form[name]
	}
	return out
}

// filter is one Filter.N of a Describe call.
type filter struct {
	name   string
	values []string
}

func parseFilters(form url.Values) []filter {
	var out []filter
	for i := 1; ; i++ {
		p := "Filter." + strconv.Itoa(i)
		name, ok := form[p+".Name"]
		if !ok {
			return out
		}
		out = append(out, filter{name: name[0], values: listParam(form, p+".Value")})
	}
}

const xmlns = "http://ec2.amazonaws.com/doc/2016-11-15/"

// requestID returns a UUID-shaped request ID. f.mu must be held.
func (f *Fake) requestID() string {
	a, b := f.rng.Uint64(), f.rng.Uint64()
	return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", a>>32, a>>16&0xffff, a&0xfff, b>>48&0x3fff|0x8000, b&(1<<48-1))
}

// errorBody is EC2's error envelope.
func (f *Fake) errorBody(e *apiError) []byte {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString("<Response><Errors><Error><Code>")
	_ = xml.EscapeText(&b, []byte(e.code))
	b.WriteString("</Code><Message>")
	_ = xml.EscapeText(&b, []byte(e.message))
	b.WriteString("</Message></Error></Errors><RequestID>")
	b.WriteString(f.requestID())
	b.WriteString("</RequestID></Response>")
	return b.Bytes()
}

func (f *Fake) writeError(w http.ResponseWriter, e *apiError) {
	f.mu.Lock()
	body := f.errorBody(e)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(e.status)
	_, _ = w.Write(body)
}

// successBody wraps resp's fields in <ActionResponse xmlns=...> with a
// requestId first, as EC2 does.
func (f *Fake) successBody(action string, resp any) []byte {
	inner, err := xml.Marshal(resp)
	if err != nil {
		// The response types are ours and always marshal.
		panic(fmt.Sprintf("ec2fake: marshal %s response: %v", action, err))
	}
	// resp marshals as <r>...</r>; keep the inside.
	inner = bytes.TrimSuffix(bytes.TrimPrefix(inner, []byte("<r>")), []byte("</r>"))
	var b bytes.Buffer
	b.WriteString(xml.Header)
	fmt.Fprintf(&b, "<%sResponse xmlns=%q><requestId>%s</requestId>", action, xmlns, f.requestID())
	b.Write(inner)
	fmt.Fprintf(&b, "</%sResponse>", action)
	return b.Bytes()
}
