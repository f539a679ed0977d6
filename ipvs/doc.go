// Package ipvs holds the director's desired IPVS state and a Reconciler that
// brings the kernel's IPVS table to it by applying only the difference.
//
// # Model
//
// A Service is one virtual service (address/protocol/port, or a firewall
// mark) with its scheduler, persistence and real servers (Destinations). The
// types are independent of the YAML configuration; the daemon converts one
// into the other.
//
// # Sorry server
//
// A Service may carry a Sorry destination. It is not programmed while at
// least one real server in Destinations has a weight above zero. When none
// has (all removed, or all set to weight 0 by failing health checks), the
// sorry server is added to the kernel; when a real server gets weight again,
// the sorry server is drained like any other removed destination, so the
// connections it holds can finish. Service.Effective computes the list the
// kernel should hold, so the rule is testable without a kernel.
//
// # Ownership
//
// The Reconciler only changes services it owns: every key it has been asked
// to program (created or adopted). A service that is neither desired nor
// owned, such as one an operator made by hand with ipvsadm, is never
// touched. The owned keys are kept in a small JSON file (written atomically)
// so that a restarted daemon still removes a service that left the
// configuration while it was down. A desired service that already exists in
// the kernel is adopted as it is: with the same configuration, a restart
// performs no kernel write at all, and no flush ever happens. Adopting a
// service means owning all of it: destinations in it that are not desired
// are drained and removed.
//
// # Draining
//
// A destination that leaves the desired state is first set to weight 0, so
// the scheduler sends it no new connections, and is deleted on a later pass
// once the kernel reports no active connection for it, or once the drain
// timeout has passed since the drain began. A service that leaves the desired
// state is drained the same way, destination by destination, and deleted (in
// one request) as soon as every destination left in it may be deleted. The
// drain start times live in memory only: after a restart the timeout starts
// again, which errs on the side of keeping connections alive. UDP traffic
// only ever counts as inactive connections in IPVS, so a UDP destination is
// deleted on the pass after its weight went to 0.
//
// # Drift
//
// Apply re-reads the kernel unless Config.CacheFor lets it plan against the
// reconciler's view (its last full read plus its own writes). The caller
// times its own resync: Invalidate (then Apply) or Resync re-read the whole
// table, so whatever changed it behind the director's back (ipvsadm -C, a
// deleted destination, a changed weight) is put back at the latest on the
// next resync. The daemon's dataplane invalidates on its resync tick. A write that
// fixes an object whose desired state did not change since the previous
// Apply counts as a repair and is logged at warning level.
package ipvs
