package labtests

import (
	"fmt"
	"time"

	lp "github.com/director-lb/director/labtests/labplan"
)

// Labels of the pair plan.
const (
	LabelPaired     = "paired"       // wait_exec: lb1's state says the configurations match
	LabelRegWrong   = "reg-wrong"    // exec on sorry: register with a wrong token (HTTP code)
	LabelRegister   = "register"     // exec on sorry: register itself into http (HTTP code)
	LabelRegOnLB2   = "reg-on-lb2"   // wait_exec: the registration in lb2's table
	LabelDrainLB1   = "drain-lb1"    // exec on lb1: director drain rs2
	LabelDrainOnLB2 = "drain-on-lb2" // wait_exec: rs2 at weight 0 in lb2's table
	LabelPairState  = "pair-state"   // exec on lb2: director state after the failover
)

// PairParams are IPVSParams with the pair API on both directors.
func PairParams() Params {
	p := IPVSParams(lp.Director)
	p.IPVS.Pair = true
	return p
}

// curlCode posts body to node's API path as the sorry host, over TLS
// trusting the pair's CA (no client certificate, as a real server), and
// prints only the HTTP status code.
func curlCode(path, token, body string) Step {
	return lp.Exec(lp.Sorry, "curl", "-sS", "-m", "3", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", lp.PairCAFile(),
		"-H", "Authorization: Bearer "+token, "-d", body, "https://"+lp.APIAddr(lp.LB1)+path)
}

// PairPlan: the directors pair up; the sorry host registers itself into
// the HTTP service on lb1 (a wrong token first) and shows up in lb2's
// table too; an operator drains rs2 on lb1 and lb2's table follows; lb1's
// daemon is killed and lb2, now master, serves the client without rs2 and
// with the registered server.
func PairPlan(name string, p Params) Plan {
	var steps []Step
	for _, n := range []string{lp.LB1, lp.LB2} {
		steps = append(steps, lp.Exec("", lp.WriteTokensArgv(n)...))
	}
	steps = append(steps, ipvsStart(p)...)
	sock := func(n string) string { return "/run/" + n + "/director.sock" }
	sorry, _ := lp.HostByName(lp.Sorry)
	reg := fmt.Sprintf(`{"service":"http","address":"%s","port":%d}`, sorry.IPv4.Addr(), lp.HTTPPort)
	steps = append(steps,
		lp.WaitExec(lp.LB1, 10*time.Second, "configuration matches", "director", "state", "-socket", sock(lp.LB1)).As(LabelPaired),
		lp.ProbeStart(),
		curlCode("/v1/register", "not-the-token-0123456789", reg).As(LabelRegWrong),
		curlCode("/v1/register", lp.RegisterToken, reg).As(LabelRegister),
		lp.WaitExec(lp.LB2, 10*time.Second, destRE(lp.Sorry, lp.HTTPPort, 1, -1), "ipvsadm", "-Ln").As(LabelRegOnLB2),
		lb1Table(10*time.Second, destRE(lp.Sorry, lp.HTTPPort, 1, -1), false),
		lp.Exec(lp.LB1, "director", "drain", "-socket", sock(lp.LB1), lp.RSAddr(lp.RS2, lp.HTTPPort)).As(LabelDrainLB1),
		lp.WaitExec(lp.LB2, 10*time.Second, destRE(lp.RS2, lp.HTTPPort, 0, -1), "ipvsadm", "-Ln").As(LabelDrainOnLB2),
		lp.Sleep(time.Second),
		lp.Signal(lp.LB1, "KILL").As(LabelFail),
		lp.WaitVIP(lp.LB2, takeoverTimeout(p)).As(LabelTakeover),
		lp.Sleep(3*time.Second),
		lp.ProbeStop().As(LabelProbe),
		lp.Exec(lp.LB2, "director", "state", "-socket", sock(lp.LB2)).As(LabelPairState),
	)
	files, err := lp.PairFiles()
	if err != nil {
		panic(err) // crypto/rand failed: nothing in the lab could work
	}
	return Plan{Name: name, Params: p, Steps: steps, Files: files}
}
