package labtests

import (
	"testing"
	"time"
)

func TestMarkedDown(t *testing.T) {
	log := `==== lb1 started at 2026-12-07T03:33:18Z: keepalived -n -l
Mon Dec  7 03:33:20 2026: Removing service [10.0.0.51]:tcp:80 from VS [10.0.1.1]:tcp:80
Mon Dec  7 03:33:25 2026: Removing service [10.0.0.52]:tcp:80 from VS [10.0.1.1]:tcp:80
Mon Dec  7 03:33:25 2026: Adding service [10.0.0.52]:tcp:80 to VS [10.0.1.1]:tcp:80
time=2026-12-07T03:33:21.5Z level=INFO msg="health check state change" part=checks check="10.0.0.55:80 http GET /s028" from=up to=down reason="timeout after 1s"
time=2026-12-07T03:33:22Z level=INFO msg="health check state change" part=checks check="10.0.0.55:80 http GET /s028" from=down to=up reason="HTTP 200"
time=2026-12-07T03:33:40Z level=INFO msg="health check state change" part=checks check="10.0.0.56:80 http GET /s028" from=unknown to=down reason="timeout after 1s"
`
	from := time.Date(2026, 12, 7, 3, 33, 20, 400e6, time.UTC) // keepalived's whole second counts
	to := time.Date(2026, 12, 7, 3, 33, 30, 0, time.UTC)
	if n := MarkedDown(log, from, to); n != 3 {
		t.Errorf("MarkedDown = %d, want 3 (two keepalived removals, one director down)", n)
	}
}
