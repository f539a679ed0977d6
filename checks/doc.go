// Package checks runs the health checks that decide whether a real server
// gets traffic, and with which weight.
//
// # Kinds
//
// A check is described by a Spec and carried out by a Prober: an HTTP or
// HTTPS request with status, body expression and MD5 digest (keepalived's
// HTTP_GET and SSL_GET), TCP connect with an optional send/expect exchange
// (TCP_CHECK), a DNS query over UDP or TCP (DNS_CHECK), an external command
// (MISC_CHECK), a UDP datagram with an optional reply (UDP_CHECK), an ICMP
// or ICMPv6 echo (PING_CHECK), an SMTP greeting, HELO and optional STARTTLS
// (SMTP_CHECK) and a number read from a file (FILE_CHECK). Every read is
// capped (MaxBytes, 64 KiB by default) and every probe ends at its timeout,
// so a real server that sends garbage, an endless body or a slow trickle
// costs a bounded amount of memory and time. TCP checks close their
// connections with a reset (SO_LINGER 0), as HAProxy does, so thousands of
// checks a second leave no TIME_WAIT sockets behind to exhaust the
// ephemeral ports.
//
// # Rounds, retries, rise and fall
//
// Every Interval a check runs one round: up to 1+Retries attempts, RetryDelay
// apart, stopping at the first success (keepalived's retry and
// delay_before_retry). A round's outcome feeds the damping counters: Fall
// failed rounds in a row take an up server down, Rise good rounds in a row
// bring a down server back. Attempts run in their own goroutines, at most
// Options.MaxInFlight at once; beyond that they queue, and their timeout
// starts only when they run, so an overloaded director falls behind
// schedule rather than timing out healthy servers. Attempts due within the
// same 50ms slot (Options.Coalesce) run together, a little early, so that
// one wake-up of the process serves several checks.
//
// # Initial state
//
// A check starts Unknown. Its first round runs soon (within
// Options.StartSpread, 1s by default, spread at random so that thousands of
// checks do not fire together) and decides at once, without rise or fall:
// one good round means Up, one failed round (after its retries) means Down.
// Compute treats an Unknown server as "leave it as the kernel has it": a
// director that restarts keeps serving with the weights already in IPVS,
// while on a fresh start a server is only added once a check has seen it
// answer. So traffic never goes to a server nobody has checked, and a
// restart does not blackhole a service while its checks warm up.
//
// # Dynamic weight (MISC_CHECK misc_dynamic)
//
// With ExecSpec.Dynamic, the command's exit status works as in keepalived:
// 0 is up and leaves the weight as it was, 1 is down, and 2-255 is up with
// weight status-2 (so 255 means weight 253). A dynamic weight, once
// reported, overrides the configured weight until another one is reported.
//
// # Weight adjustments (FILE_CHECK)
//
// A file check with a weight reports Result.Adjust, the file's value times
// the weight: while the check passes it is added to the server's weight
// (configured or dynamic), and the sum is kept within 0-MaxWeight, as
// keepalived adds its file checks to a real server's weight.
package checks
